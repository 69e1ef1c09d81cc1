// Native Verilator harness for switch saturation experiments (hdl/switch/experiment.py).
//
// The design (SwitchExperimentTop) generates and measures its own traffic, so this main only
// resets it, programs the switch tables, runs the clock and reads the result registers at
// the end: no per-cycle work beyond eval().
//
// Usage: top KEY=VALUE ...   keys: warmup, measure, seed, threshold, saturate, flits, lph,
//        probes (count), bins (histogram bins), ports, writes (t:a:d,t:a:d,...),
//        evals (per clock: 1, the default, or 2; see tick() below)
// Output (stdout), one item per line: "probe I VALUE", "hist PORT BIN COUNT" (non-zero bins),
// "cycles N", "seconds S" (wall clock), "cpu_seconds S" (this process's CPU time; the fair
// speed figure on a shared machine), "evals_per_clock E". Any other text is the name of a
// property the design found violated (run() below stops the run with exit code 3).
//
// Build hint (sim/build.py): the model runs for millions of clocks, so it is worth the
// slower link-time-optimised build. (A pgo-train hint was measured too and is not used:
// no gain on top of LTO, docs/switch.md "Simulation speed".)
// ubproto-build: lto
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "Vtop.h"
#include "Vtop___024root.h"
#include "verilated.h"

namespace {

std::map<std::string, std::string> parse_args(int argc, char** argv) {
    std::map<std::string, std::string> args;
    for (int i = 1; i < argc; ++i) {
        std::string a(argv[i]);
        auto eq = a.find('=');
        if (eq != std::string::npos) args[a.substr(0, eq)] = a.substr(eq + 1);
    }
    return args;
}

uint64_t num(const std::map<std::string, std::string>& args, const char* key, uint64_t dflt) {
    auto it = args.find(key);
    return it == args.end() ? dflt : std::strtoull(it->second.c_str(), nullptr, 0);
}

// One eval() per clock. The design has only rising-edge logic and no combinational path from
// an input (SwitchExperimentTop registers every input), so an eval() at clk = 0 computes
// nothing: all it does is record clk = 0 as the previous value of the posedge trigger. This
// writes that value directly when the model has it under the name Verilator 5 gives it;
// otherwise (another Verilator) the harness falls back to two evals per clock.
template <typename Root>
bool clear_clk_trigger(Root* root) {
    if constexpr (requires { root->__Vtrigprevexpr___TOP__clk__0 = 0; }) {
        root->__Vtrigprevexpr___TOP__clk__0 = 0;
        return true;
    } else {
        return false;
    }
}

}  // namespace

int main(int argc, char** argv) {
    auto args = parse_args(argc, argv);
    auto context = std::make_unique<VerilatedContext>();
    context->debug(0);
    auto top = std::make_unique<Vtop>(context.get());
    uint64_t cycles = 0;
    const bool one_eval = num(args, "evals", 1) == 1 && clear_clk_trigger(top->rootp);
    top->clk = 0;
    top->eval();  // initial values, and clk = 0 as the trigger's previous value
    auto tick = [&]() {
        if (one_eval) {
            top->clk = 1;
            top->eval();
            top->clk = 0;
            clear_clk_trigger(top->rootp);
        } else {
            top->clk = 0;
            top->eval();
            top->clk = 1;
            top->eval();
        }
        ++cycles;
    };

    // The design has no reset: its registers start from their initial values.
    top->enable = 0;
    top->measure = 0;
    top->tbl_valid = 0;
    for (int i = 0; i < 4; ++i) tick();

    // Table writes: "t:a:d,t:a:d,..."
    std::stringstream writes(args.count("writes") ? args["writes"] : "");
    std::string item;
    while (std::getline(writes, item, ',')) {
        unsigned t, a, d;
        if (std::sscanf(item.c_str(), "%u:%u:%u", &t, &a, &d) != 3) continue;
        top->tbl_valid = 1;
        top->tbl_table = t;
        top->tbl_addr = a;
        top->tbl_data = d;
        tick();
    }
    top->tbl_valid = 0;

    top->seed = num(args, "seed", 1);
    top->threshold = num(args, "threshold", 0);
    top->saturate = num(args, "saturate", 0);
    top->packet_flits = num(args, "flits", 1);
    top->lph = num(args, "lph", 0);
    tick();  // seeds load while enable is low
    tick();

    const uint64_t warmup = num(args, "warmup", 1000);
    const uint64_t measure = num(args, "measure", 10000);
    // The model is built without Verilator's assertion machinery (hdl/switch/experiment.py):
    // a violated property shows as its name on stdout, written by the design itself. Nothing
    // else writes to stdout during the run, so the run stops at the first check that finds
    // stdout grown (every 2^16 clocks; needs stdout to be a file, as run_point makes it).
    std::fflush(stdout);
    const long quiet_end = std::ftell(stdout);
    auto violated = [&]() {
        if (quiet_end < 0) return false;
        std::fflush(stdout);
        return std::ftell(stdout) != quiet_end;
    };
    auto run = [&](uint64_t clocks) {
        for (uint64_t done = 0; done < clocks;) {
            const uint64_t chunk = std::min<uint64_t>(clocks - done, 1u << 16);
            for (uint64_t i = 0; i < chunk; ++i) tick();
            done += chunk;
            if (violated()) {
                std::fprintf(stderr, "stopped at clock %llu: a property was violated\n",
                             (unsigned long long)cycles);
                std::exit(3);
            }
        }
    };
    const uint64_t start_cycles = cycles;
    auto start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    top->enable = 1;
    run(warmup);
    top->measure = 1;
    run(measure);
    top->measure = 0;
    auto stop = std::chrono::steady_clock::now();
    const std::clock_t cpu_stop = std::clock();
    const uint64_t run_cycles = cycles - start_cycles;
    top->enable = 0;
    tick();
    tick();

    const uint64_t probes = num(args, "probes", 0);
    for (uint64_t p = 0; p < probes; ++p) {
        top->probe_sel = p;
        tick();  // the input register
        tick();  // the probe register
        std::printf("probe %llu %llu\n", (unsigned long long)p,
                    (unsigned long long)top->probe_data);
    }
    const uint64_t bins = num(args, "bins", 0), ports = num(args, "ports", 0);
    for (uint64_t port = 0; port < ports; ++port) {
        top->hist_port = port;
        for (uint64_t b = 0; b < bins; ++b) {
            top->hist_addr = b;
            tick();  // the input register
            tick();  // the sink's RAM read
            tick();  // the read-out register
            if (top->hist_data) {
                std::printf("hist %llu %llu %llu\n", (unsigned long long)port,
                            (unsigned long long)b, (unsigned long long)top->hist_data);
            }
        }
    }
    std::printf("cycles %llu\n", (unsigned long long)run_cycles);
    std::printf("seconds %.6f\n", std::chrono::duration<double>(stop - start).count());
    std::printf("cpu_seconds %.6f\n", double(cpu_stop - cpu_start) / CLOCKS_PER_SEC);
    std::printf("evals_per_clock %d\n", one_eval ? 1 : 2);
    top->final();
    return 0;
}
