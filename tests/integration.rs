//! One integration-test binary (every extra file in tests/ is another slow
//! link step on two cores); the suites live in tests/it/.

mod it;
