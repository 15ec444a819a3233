//! Where files live (the crate `data-storage`): a local folder or a bucket's prefix on S3,
//! Google Cloud Storage or Azure ([`location::Location`]), with what the Parquet store needs
//! of it: listings, ranged reads, atomic publishing of a finished file, and the conditional
//! PUTs that `--coordinate`'s claims are made of. It knows no dataset, store or command.

mod cloud;
pub mod location;
