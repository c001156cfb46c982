//! Logging support that costs the same at iteration 1,000,000 as at iteration 10:
//!
//! - [`LogBuffer`]: per-key scalar histories in bounded rings (O(1) update, window
//!   statistics, global mean and count, bounded state for checkpoints);
//! - [`JsonlSink`]: a JSON-lines file written by a background thread, so logging a record
//!   never waits on the disk.

mod buffer;
mod sink;

pub use buffer::{KeyState, LogBuffer, LogBufferError, Series};
pub use sink::JsonlSink;
