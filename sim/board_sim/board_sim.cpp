// Simulated board: the Verilator model of a board design's core, driven from C++ only.
//
// Modes (see ubproto/sim/board_sim/__init__.py, which builds and starts this program):
//   --udp HOST:PORT    Serve the host bridge on a UDP socket (PORT, 0 = any free port) and the
//                      data-plane port 0 on a second socket (--data-port, default PORT+1
//                      when PORT is given, else any free port). Prints one line
//                      "READY bridge=<port> data=<port>" on stdout once both are bound.
//                      Each bridge datagram is one request frame; each answer goes back to the
//                      sender of the last request. Each data datagram is one packet into the
//                      design; packets out of the design go to the last data sender.
//   --batch IN OUT     Fuzz/replay mode without sockets: IN holds request frames, each as
//                      u32 length (little endian) | u8 flags (bit0: transport error) | bytes.
//                      Every frame is fed in, the model runs until the bridge is idle again
//                      (or --max-cycles pass: a hang, reported and exit code 3), and OUT gets
//                      u32 length | u32 exec cycles | answer bytes (length 0 = no answer).
//
// No Python runs in the cycle loop. When nothing is in flight the program sleeps in poll()
// instead of clocking an idle model, so an idle simulated board costs no CPU.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "Vboard.h"
#include "verilated.h"

namespace {

constexpr int kWordBytes = 20;          // one flit per packet-stream word (hdl/stream.py)
constexpr int kWideWords = 5;           // 160 bits as Verilator 32-bit chunks
constexpr int kMaxDatagram = 65536;
constexpr uint64_t kIdleCyclesBeforeSleep = 2000;  // quiet cycles before blocking in poll()
constexpr int kPollSleepMs = 50;
// Cycles run between two looks at the sockets: small, so an answer leaves soon after it is
// complete (a poll() with no wait costs far less than clocking the model).
constexpr int kCyclesPerSlice = 32;

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

using Frame = std::vector<uint8_t>;

struct Board {
    Vboard top;
    uint64_t cycles = 0;

    Board() {
        top.clk = 0;
        top.rst = 1;
        tick();
        tick();
        top.rst = 0;
    }
    void tick() {
        top.clk = 0;
        top.eval();
        top.clk = 1;
        top.eval();
        ++cycles;
    }
};

// Packs wire byte i of a word at the bit position the packet stream uses (byte 0 = MSB).
void set_word(VlWide<kWideWords>& wide, const uint8_t* bytes, int n) {
    for (int w = 0; w < kWideWords; ++w) wide[w] = 0;
    for (int i = 0; i < n; ++i) {
        int bit = (kWordBytes - 1 - i) * 8;
        wide[bit / 32] |= static_cast<uint32_t>(bytes[i]) << (bit % 32);
    }
}

void get_word(const VlWide<kWideWords>& wide, uint8_t* bytes, int n) {
    for (int i = 0; i < n; ++i) {
        int bit = (kWordBytes - 1 - i) * 8;
        bytes[i] = static_cast<uint8_t>(wide[bit / 32] >> (bit % 32));
    }
}

// Byte-serial feeder of request frames into the bridge (always ready).
struct BridgeIn {
    std::deque<std::pair<Frame, bool>> queue;  // frame, transport error
    size_t pos = 0;
    bool active() const { return !queue.empty(); }
    void drive(Vboard& t) {
        if (queue.empty()) {
            t.bridge_rx_valid = 0;
            return;
        }
        const auto& [frame, error] = queue.front();
        t.bridge_rx_valid = 1;
        t.bridge_rx_data = frame.empty() ? 0 : frame[pos];
        bool last = frame.empty() || pos + 1 == frame.size();
        t.bridge_rx_last = last;
        t.bridge_rx_error = last && error;
    }
    void after_edge() {  // rx.ready is always 1
        if (queue.empty()) return;
        const auto& frame = queue.front().first;
        if (frame.empty() || ++pos == frame.size()) {
            queue.pop_front();
            pos = 0;
        }
    }
};

struct BridgeOut {
    Frame current;
    std::deque<Frame> done;
    void sample(Vboard& t) {  // call before the edge; tx.ready is held at 1
        if (t.bridge_tx_valid) {
            current.push_back(static_cast<uint8_t>(t.bridge_tx_data));
            if (t.bridge_tx_last) {
                done.push_back(std::move(current));
                current.clear();
            }
        }
    }
};

struct PacketIn {
    std::deque<Frame> queue;
    size_t pos = 0;
    bool active() const { return !queue.empty(); }
    void drive(Vboard& t) {
        if (queue.empty()) {
            t.pkt_rx_valid = 0;
            return;
        }
        const Frame& p = queue.front();
        int n = static_cast<int>(std::min<size_t>(kWordBytes, p.size() - pos));
        set_word(t.pkt_rx_data, p.data() + pos, n);
        t.pkt_rx_nbytes = n;
        t.pkt_rx_first = pos == 0;
        t.pkt_rx_last = pos + n == p.size();
        t.pkt_rx_valid = 1;
    }
    void after_edge(bool accepted) {
        if (!accepted || queue.empty()) return;
        pos += kWordBytes;
        if (pos >= queue.front().size()) {
            queue.pop_front();
            pos = 0;
        }
    }
};

struct PacketOut {
    Frame current;
    std::deque<Frame> done;
    void sample(Vboard& t) {
        if (t.pkt_tx_valid) {
            uint8_t bytes[kWordBytes];
            int n = t.pkt_tx_nbytes;
            if (n > kWordBytes) n = kWordBytes;
            get_word(t.pkt_tx_data, bytes, n);
            if (t.pkt_tx_first) current.clear();
            current.insert(current.end(), bytes, bytes + n);
            if (t.pkt_tx_last) {
                done.push_back(std::move(current));
                current.clear();
            }
        }
    }
};

struct Sim {
    Board board;
    BridgeIn bin;
    BridgeOut bout;
    PacketIn pin;
    PacketOut pout;

    // One clock cycle with every stream driven and sampled.
    void cycle() {
        Vboard& t = board.top;
        bin.drive(t);
        pin.drive(t);
        t.bridge_tx_ready = 1;
        t.pkt_tx_ready = 1;
        t.eval();
        bool pkt_accepted = t.pkt_rx_valid && t.pkt_rx_ready;
        bout.sample(t);
        pout.sample(t);
        board.tick();
        bin.after_edge();
        pin.after_edge(pkt_accepted);
    }
    bool busy() {
        Vboard& t = board.top;
        return bin.active() || pin.active() || t.bridge_busy || t.bridge_tx_valid ||
               t.pkt_tx_valid || t.dut_busy;
    }
};

int open_udp(const char* host, int port, int* bound_port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return -1;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return -1;
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    *bound_port = ntohs(addr.sin_port);
    return fd;
}

int serve_udp(const std::string& host, int port, int data_port) {
    int bridge_bound = 0, data_bound = 0;
    int bfd = open_udp(host.c_str(), port, &bridge_bound);
    if (bfd < 0) {
        std::fprintf(stderr, "board_sim: cannot bind UDP %s:%d: %s\n", host.c_str(), port,
                     std::strerror(errno));
        return 2;
    }
    int dfd = open_udp(host.c_str(), data_port, &data_bound);
    if (dfd < 0) {
        std::fprintf(stderr, "board_sim: cannot bind UDP %s:%d: %s\n", host.c_str(), data_port,
                     std::strerror(errno));
        return 2;
    }
    std::printf("READY bridge=%d data=%d\n", bridge_bound, data_bound);
    std::fflush(stdout);

    Sim sim;
    sockaddr_in bridge_peer{}, data_peer{};
    bool have_bridge_peer = false, have_data_peer = false;
    std::vector<uint8_t> buf(kMaxDatagram);
    uint64_t quiet = 0;
    while (!g_stop) {
        pollfd fds[2] = {{bfd, POLLIN, 0}, {dfd, POLLIN, 0}};
        bool idle = !sim.busy() && quiet >= kIdleCyclesBeforeSleep;
        int ready = poll(fds, 2, idle ? kPollSleepMs : 0);
        if (ready > 0) {
            for (int i = 0; i < 2; ++i) {
                if (!(fds[i].revents & POLLIN)) continue;
                sockaddr_in from{};
                socklen_t flen = sizeof from;
                ssize_t n = recvfrom(fds[i].fd, buf.data(), buf.size(), 0,
                                     reinterpret_cast<sockaddr*>(&from), &flen);
                if (n <= 0) continue;
                Frame f(buf.begin(), buf.begin() + n);
                if (i == 0) {
                    bridge_peer = from;
                    have_bridge_peer = true;
                    sim.bin.queue.emplace_back(std::move(f), false);
                } else {
                    data_peer = from;
                    have_data_peer = true;
                    sim.pin.queue.push_back(std::move(f));
                }
            }
        }
        if (idle && ready <= 0) continue;
        // Run a slice of cycles, then look at the sockets again.
        for (int c = 0; c < kCyclesPerSlice; ++c) {
            bool was_busy = sim.busy();
            sim.cycle();
            quiet = was_busy ? 0 : quiet + 1;
        }
        while (!sim.bout.done.empty()) {
            Frame& f = sim.bout.done.front();
            if (have_bridge_peer)
                sendto(bfd, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&bridge_peer),
                       sizeof bridge_peer);
            sim.bout.done.pop_front();
        }
        while (!sim.pout.done.empty()) {
            Frame& f = sim.pout.done.front();
            if (have_data_peer)
                sendto(dfd, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&data_peer),
                       sizeof data_peer);
            sim.pout.done.pop_front();
        }
    }
    std::fprintf(stderr, "board_sim: stopped after %llu cycles\n",
                 static_cast<unsigned long long>(sim.board.cycles));
    return 0;
}

bool read_exact(FILE* f, void* p, size_t n) { return std::fread(p, 1, n, f) == n; }

int run_batch(const char* in_path, const char* out_path, uint64_t max_cycles) {
    FILE* in = std::fopen(in_path, "rb");
    FILE* out = std::fopen(out_path, "wb");
    if (!in || !out) {
        std::fprintf(stderr, "board_sim: cannot open %s or %s\n", in_path, out_path);
        return 2;
    }
    Sim sim;
    uint64_t frames = 0;
    for (;;) {
        uint32_t len;
        uint8_t flags;
        if (!read_exact(in, &len, 4)) break;
        if (!read_exact(in, &flags, 1)) return 2;
        Frame f(len);
        if (len && !read_exact(in, f.data(), len)) return 2;
        sim.bin.queue.emplace_back(std::move(f), (flags & 1) != 0);
        uint64_t start = sim.board.cycles;
        // Run until the frame is consumed and the bridge is idle with nothing to send.
        while (sim.busy()) {
            sim.cycle();
            if (sim.board.cycles - start > max_cycles) {
                std::fprintf(stderr, "board_sim: HANG on frame %llu (no idle after %llu "
                             "cycles)\n", static_cast<unsigned long long>(frames),
                             static_cast<unsigned long long>(max_cycles));
                return 3;
            }
        }
        sim.cycle();  // let the busy flag settle after the last byte
        while (sim.busy()) sim.cycle();
        uint32_t out_len = 0, cycles = 0;
        Frame answer;
        if (!sim.bout.done.empty()) {
            answer = std::move(sim.bout.done.front());
            sim.bout.done.pop_front();
            out_len = static_cast<uint32_t>(answer.size());
        }
        if (!sim.bout.done.empty()) {
            std::fprintf(stderr, "board_sim: frame %llu got more than one answer\n",
                         static_cast<unsigned long long>(frames));
            return 3;
        }
        cycles = sim.board.top.bridge_exec_cycles;
        std::fwrite(&out_len, 4, 1, out);
        std::fwrite(&cycles, 4, 1, out);
        if (out_len) std::fwrite(answer.data(), 1, out_len, out);
        ++frames;
    }
    std::fclose(out);
    std::fprintf(stderr, "board_sim: %llu frames, %llu cycles\n",
                 static_cast<unsigned long long>(frames),
                 static_cast<unsigned long long>(sim.board.cycles));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    std::string host = "127.0.0.1";
    int port = 0, data_port = 0;
    uint64_t max_cycles = 1000000;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--udp" && i + 1 < argc) {
            std::string hp = argv[++i];
            auto colon = hp.rfind(':');
            host = hp.substr(0, colon);
            port = std::atoi(hp.c_str() + colon + 1);
        } else if (a == "--data-port" && i + 1 < argc) {
            data_port = std::atoi(argv[++i]);
        } else if (a == "--max-cycles" && i + 1 < argc) {
            max_cycles = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--batch" && i + 2 < argc) {
            const char* in = argv[++i];
            const char* out = argv[++i];
            return run_batch(in, out, max_cycles);
        } else if (a.rfind("+verilator", 0) == 0) {
            continue;
        } else {
            std::fprintf(stderr, "usage: %s --udp HOST:PORT [--data-port N] | --batch IN OUT "
                         "[--max-cycles N]\n", argv[0]);
            return 2;
        }
    }
    if (data_port == 0 && port != 0) data_port = port + 1;  // the documented default
    return serve_udp(host, port, data_port);
}
