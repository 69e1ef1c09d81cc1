// Simulated Ethernet board: the Verilator model of the scaleout-switch design (MAC, ARP/IPv4/UDP
// stack, host bridge, design under test) driven at its RGMII pins from C++ only.
//
// The model's pins are the RGMII DDR pairs of ubproto/hdl/host/eth/rgmii.py's simulation model:
// per clock, the nibble and control bit of the rising edge and of the falling edge. This
// program turns Ethernet frames into that (preamble, SFD, frame, FCS, inter-frame gap) and
// back (checking preamble, SFD and FCS of every frame the board sends).
//
// Modes (ubproto/sim/board_sim/tap.py builds and starts this program):
//   --tap NAME       Create TAP device NAME (in the caller's network namespace), print
//                    "READY tap=NAME" and exchange frames with it until SIGTERM.
//   --batch IN OUT   No device: IN holds wire byte streams, each u32 length (LE) | u8 flags
//                    (bit0: assert RX_ER on the middle byte) | bytes (preamble..FCS, as they
//                    go on the wire, damaged or not). Each is sent, then the model runs until
//                    nothing has moved for --quiet cycles (or --max-cycles pass: a hang, exit 3).
//                    OUT gets per input: u32 frame count, then per frame u32 length | bytes
//                    (what the board sent, preamble/SFD/FCS stripped after checking them).
//
// As in board_sim.cpp no Python runs in the cycle loop, and an idle board sleeps in poll().

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

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

constexpr uint8_t kPreamble = 0x55;
constexpr uint8_t kSfd = 0xD5;
constexpr int kPreambleBytes = 7;
constexpr int kFcsBytes = 4;
constexpr int kMinFrame = 60;           // before the FCS; shorter frames are padded
constexpr int kIfgBytes = 12;
constexpr int kMaxFrame = 16384;
constexpr uint64_t kIdleCyclesBeforeSleep = 4000;
constexpr int kPollSleepMs = 50;
constexpr int kCyclesPerSlice = 64;

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

using Bytes = std::vector<uint8_t>;

uint32_t crc32(const uint8_t* p, size_t n) {  // IEEE 802.3 (reflected 0x04C11DB7)
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

Bytes to_wire(const Bytes& frame) {
    Bytes w(kPreambleBytes, kPreamble);
    w.push_back(kSfd);
    Bytes f = frame;
    if (f.size() < kMinFrame) f.resize(kMinFrame, 0);
    uint32_t c = crc32(f.data(), f.size());
    w.insert(w.end(), f.begin(), f.end());
    for (int i = 0; i < kFcsBytes; ++i) w.push_back(static_cast<uint8_t>(c >> (8 * i)));
    return w;
}

struct Stats {
    uint64_t tx_bad = 0;  // frames from the board with a bad preamble/SFD/FCS or TX_ER
};

struct Sim {
    Vboard top;
    uint64_t cycles = 0;
    std::deque<std::pair<Bytes, bool>> in;  // wire bytes, inject RX_ER
    size_t pos = 0;
    int gap = 0;
    Bytes tx_cur;
    bool tx_active = false, tx_error = false;
    std::deque<Bytes> out;
    Stats stats;

    Sim() {
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
    bool busy() const { return !in.empty() || gap > 0 || tx_active || top.busy; }

    // RX: one wire byte per clock as the DDR pairs of the RGMII simulation model.
    void drive() {
        bool dv = false, er = false;
        uint8_t byte = 0;
        if (gap > 0) {
            --gap;
        } else if (!in.empty()) {
            const auto& [wire, inject] = in.front();
            byte = wire[pos];
            dv = true;
            er = inject && pos == wire.size() / 2;
            if (++pos == wire.size()) {
                in.pop_front();
                pos = 0;
                gap = kIfgBytes;
            }
        }
        top.sim_rx_data_rise = byte & 0xF;
        top.sim_rx_data_fall = byte >> 4;
        top.sim_rx_ctl_rise = dv;
        top.sim_rx_ctl_fall = dv ^ er;
    }
    // TX: rebuild bytes from the DDR pairs; check and strip preamble, SFD and FCS.
    void sample() {
        bool en = top.sim_tx_ctl_rise;
        bool er = en ^ top.sim_tx_ctl_fall;
        if (en) {
            tx_active = true;
            tx_error |= er;
            if (tx_cur.size() < kMaxFrame)
                tx_cur.push_back(static_cast<uint8_t>(top.sim_tx_data_rise |
                                                      (top.sim_tx_data_fall << 4)));
        } else if (tx_active) {
            finish_tx();
        }
    }
    void finish_tx() {
        tx_active = false;
        const size_t head = kPreambleBytes + 1;
        bool ok = !tx_error && tx_cur.size() >= head + kMinFrame + kFcsBytes &&
                  tx_cur[kPreambleBytes] == kSfd;
        for (int i = 0; ok && i < kPreambleBytes; ++i) ok = tx_cur[i] == kPreamble;
        if (ok) {
            size_t n = tx_cur.size() - head - kFcsBytes;
            uint32_t c = crc32(tx_cur.data() + head, n);
            for (int i = 0; i < kFcsBytes; ++i)
                ok = ok && tx_cur[head + n + i] == static_cast<uint8_t>(c >> (8 * i));
            if (ok) out.emplace_back(tx_cur.begin() + head, tx_cur.begin() + head + n);
        }
        if (!ok) ++stats.tx_bad;
        tx_cur.clear();
        tx_error = false;
    }
    void cycle() {
        drive();
        top.eval();
        sample();
        tick();
    }
};

int open_tap(const std::string& name) {
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
    if (fd < 0) return -1;
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int serve_tap(const std::string& name) {
    int fd = open_tap(name);
    if (fd < 0) {
        std::fprintf(stderr, "board_eth: cannot create TAP %s: %s\n", name.c_str(),
                     std::strerror(errno));
        return 2;
    }
    std::printf("READY tap=%s\n", name.c_str());
    std::fflush(stdout);
    Sim sim;
    Bytes buf(kMaxFrame);
    uint64_t quiet = 0;
    while (!g_stop) {
        pollfd p{fd, POLLIN, 0};
        bool idle = !sim.busy() && quiet >= kIdleCyclesBeforeSleep;
        int ready = poll(&p, 1, idle ? kPollSleepMs : 0);
        if (ready > 0 && (p.revents & POLLIN)) {
            for (;;) {
                ssize_t n = read(fd, buf.data(), buf.size());
                if (n <= 0) break;
                sim.in.emplace_back(to_wire(Bytes(buf.begin(), buf.begin() + n)), false);
            }
        }
        if (idle && ready <= 0) continue;
        for (int c = 0; c < kCyclesPerSlice; ++c) {
            bool was_busy = sim.busy();
            sim.cycle();
            quiet = was_busy ? 0 : quiet + 1;
        }
        while (!sim.out.empty()) {
            Bytes& f = sim.out.front();
            if (write(fd, f.data(), f.size()) < 0 && errno != EAGAIN)
                std::fprintf(stderr, "board_eth: TAP write: %s\n", std::strerror(errno));
            sim.out.pop_front();
        }
    }
    std::fprintf(stderr, "board_eth: stopped after %llu cycles, %llu bad frames from the board\n",
                 static_cast<unsigned long long>(sim.cycles),
                 static_cast<unsigned long long>(sim.stats.tx_bad));
    return sim.stats.tx_bad ? 4 : 0;
}

bool read_exact(FILE* f, void* p, size_t n) { return std::fread(p, 1, n, f) == n; }

int run_batch(const char* in_path, const char* out_path, uint64_t quiet_cycles,
              uint64_t max_cycles) {
    FILE* in = std::fopen(in_path, "rb");
    FILE* out = std::fopen(out_path, "wb");
    if (!in || !out) {
        std::fprintf(stderr, "board_eth: cannot open %s or %s\n", in_path, out_path);
        return 2;
    }
    Sim sim;
    uint64_t records = 0;
    for (;;) {
        uint32_t len;
        uint8_t flags;
        if (!read_exact(in, &len, 4)) break;
        if (!read_exact(in, &flags, 1)) return 2;
        Bytes wire(len);
        if (len && !read_exact(in, wire.data(), len)) return 2;
        if (len) sim.in.emplace_back(std::move(wire), (flags & 1) != 0);
        uint64_t start = sim.cycles, quiet = 0;
        while (quiet < quiet_cycles) {
            bool was_busy = sim.busy();
            sim.cycle();
            quiet = was_busy ? 0 : quiet + 1;
            if (sim.cycles - start > max_cycles) {
                std::fprintf(stderr, "board_eth: HANG on record %llu (still busy after %llu "
                             "cycles)\n", static_cast<unsigned long long>(records),
                             static_cast<unsigned long long>(max_cycles));
                return 3;
            }
        }
        uint32_t count = static_cast<uint32_t>(sim.out.size());
        std::fwrite(&count, 4, 1, out);
        for (const Bytes& f : sim.out) {
            uint32_t n = static_cast<uint32_t>(f.size());
            std::fwrite(&n, 4, 1, out);
            std::fwrite(f.data(), 1, n, out);
        }
        sim.out.clear();
        ++records;
    }
    std::fclose(out);
    std::fprintf(stderr, "board_eth: %llu records, %llu cycles, %llu bad frames from the board\n",
                 static_cast<unsigned long long>(records),
                 static_cast<unsigned long long>(sim.cycles),
                 static_cast<unsigned long long>(sim.stats.tx_bad));
    return sim.stats.tx_bad ? 4 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    uint64_t quiet = 400, max_cycles = 2000000;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quiet" && i + 1 < argc) {
            quiet = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--max-cycles" && i + 1 < argc) {
            max_cycles = std::strtoull(argv[++i], nullptr, 10);
        } else if (a == "--tap" && i + 1 < argc) {
            return serve_tap(argv[++i]);
        } else if (a == "--batch" && i + 2 < argc) {
            const char* in = argv[++i];
            const char* out = argv[++i];
            return run_batch(in, out, quiet, max_cycles);
        } else if (a.rfind("+verilator", 0) == 0) {
            continue;
        }
    }
    std::fprintf(stderr, "usage: %s [--quiet N] [--max-cycles N] --tap NAME | --batch IN OUT\n",
                 argv[0]);
    return 2;
}
