//! One integration-test binary (every extra file in tests/ is another slow
//! link step on two cores); the suites live in tests/it/.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod it;
