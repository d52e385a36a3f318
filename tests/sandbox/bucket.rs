//! A token bucket: `rate` a second, bursts of `rate`, as providers limit
//! an account's requests.

use std::time::Instant;

#[derive(Default)]
pub struct Bucket(Option<(f64, Instant)>);

impl Bucket {
    /// Takes a token if there is one; a rate of 0 is no limit.
    pub fn take(&mut self, rate: u32) -> bool {
        if rate == 0 {
            return true;
        }
        let now = Instant::now();
        let (tokens, at) = self.0.unwrap_or((f64::from(rate), now));
        let tokens = (tokens + at.elapsed().as_secs_f64() * f64::from(rate)).min(f64::from(rate));
        let taken = tokens >= 1.0;
        self.0 = Some((if taken { tokens - 1.0 } else { tokens }, now));
        taken
    }
}
