//! One file per subcommand of the `hotline` binary: argument structs and the glue that
//! loads config and calls into the library. Context for errors is added here.

pub mod intent;
pub mod recognize;
pub mod serve;
