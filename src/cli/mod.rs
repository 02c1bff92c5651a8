//! One file per subcommand of the `hotline` binary: argument structs and the glue that
//! loads config and calls into the library. Context for errors is added here.

pub mod check;
pub mod intent;
pub mod prompts;
pub mod recognize;
pub mod serve;
pub mod stats;
