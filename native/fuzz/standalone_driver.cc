// Runs LLVMFuzzerTestOneInput without libFuzzer (a compiler without -fsanitize=fuzzer, e.g.
// gcc): every file named on the command line, then deterministic random mutations of them
// (byte flips, inserted and removed runs, length fields set to edge values) for a given count.
// Usage: hello_parse_fuzz_driver ITERATIONS SEED_FILE...
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s ITERATIONS SEED_FILE...\n", argv[0]);
    return 2;
  }
  const long iterations = std::strtol(argv[1], nullptr, 10);
  std::vector<std::vector<uint8_t>> seeds;
  for (int i = 2; i < argc; i++) {
    std::ifstream file(argv[i], std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(seeds.back().data(), seeds.back().size());
  }
  std::mt19937_64 random(20);  // fixed: the same inputs every run
  for (long n = 0; n < iterations; n++) {
    std::vector<uint8_t> input = seeds[random() % seeds.size()];
    const int edits = 1 + static_cast<int>(random() % 4);
    for (int e = 0; e < edits; e++) {
      const size_t at = input.empty() ? 0 : random() % input.size();
      switch (random() % 5) {
        case 0:
          if (!input.empty()) input[at] ^= static_cast<uint8_t>(1u << (random() % 8));
          break;
        case 1:
          if (!input.empty()) input[at] = static_cast<uint8_t>(random());
          break;
        case 2:
          input.insert(input.begin() + static_cast<std::ptrdiff_t>(at), 1 + random() % 64, static_cast<uint8_t>(random()));
          break;
        case 3:
          if (!input.empty()) input.erase(input.begin() + static_cast<std::ptrdiff_t>(at),
                                          input.begin() + static_cast<std::ptrdiff_t>(std::min(input.size(), at + 1 + random() % 64)));
          break;
        default: {
          // A 16-bit length somewhere set to an edge: 0, 1, its neighbour's, or all ones.
          if (input.size() < at + 2) break;
          const uint16_t edges[] = {0, 1, 0xffff, 0x4000, 0x4001, static_cast<uint16_t>(input.size() - at)};
          const uint16_t value = edges[random() % (sizeof edges / sizeof edges[0])];
          input[at] = static_cast<uint8_t>(value >> 8);
          input[at + 1] = static_cast<uint8_t>(value);
        }
      }
    }
    LLVMFuzzerTestOneInput(input.data(), input.size());
  }
  std::printf("%ld mutated inputs from %zu seeds: no finding\n", iterations, seeds.size());
  return 0;
}
