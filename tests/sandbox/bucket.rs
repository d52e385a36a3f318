//! A token bucket: `rate` a second, bursts of `burst` (0: `rate`), as
//! providers limit an account's requests.

use std::time::Instant;

#[derive(Default)]
pub struct Bucket(Option<(f64, Instant)>);

impl Bucket {
    /// Takes a token if there is one; a rate of 0 is no limit.
    pub fn take(&mut self, rate: u32) -> bool {
        self.take_within(rate, 0)
    }

    /// As [`Self::take`], holding at most `burst` tokens (0: `rate`).
    pub fn take_within(&mut self, rate: u32, burst: u32) -> bool {
        if rate == 0 {
            return true;
        }
        let most = f64::from(if burst == 0 { rate } else { burst });
        let now = Instant::now();
        let (tokens, at) = self.0.unwrap_or((most, now));
        let tokens = (tokens + at.elapsed().as_secs_f64() * f64::from(rate)).min(most);
        let taken = tokens >= 1.0;
        self.0 = Some((if taken { tokens - 1.0 } else { tokens }, now));
        taken
    }
}
