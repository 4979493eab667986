// Loaded into the mocha process only (scripts/test-sanitize.sh runs `mocha --require` this).
// ASan read ASAN_OPTIONS when this process started, with leak checking on, and checks it for
// leaks when it exits; the processes the tests start from here inherit leak checking off.
// LeakSanitizer's scan at exit takes seconds on 2 cores (a child that called process.exit()
// leaves much of Node's heap unreleased to scan), more than tests give a child to exit
// (ChildListener.stop kills it after 3 s). The listeners and worker threads the suites run
// in-process are leak-checked here; in children, ASan and UBSan still check everything else.
process.env.ASAN_OPTIONS = `${process.env.ASAN_OPTIONS ?? ''}:detect_leaks=0`;
