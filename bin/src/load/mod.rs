pub mod histogram;
pub mod merge;
pub mod report;
pub mod summary;
pub mod thresholds;
