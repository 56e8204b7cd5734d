pub mod histogram;
pub mod merge;
pub mod summary;
pub mod thresholds;
