//! What auth-svc refuses to do too often, whoever calls it.
//!
//! The gateway limits sign-ins per client IP, but anything inside the
//! cluster can call auth-svc's gRPC port directly, so the RPCs that mint
//! tokens are limited here too: per account (so guessing one account's
//! password stays slow however many addresses try) and over all callers
//! (the gateway is one peer for all of its clients, so that cap is sized
//! for the gateway's legitimate traffic). Password hashing, 19 MiB a run,
//! is limited to a few at once for the whole process, with a short queue.

use std::{
    fmt,
    num::NonZeroU32,
    str::FromStr,
    sync::{Arc, OnceLock, Weak},
    time::Duration,
};

use aws_lc_rs::digest;
use governor::{
    DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use smsops_common::{
    ApiError, ErrorCode,
    config::{self, ConfigError},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A sustained rate and the burst allowed on top of it: `per_minute:burst`
/// in the environment, e.g. `10:10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

impl Rate {
    pub const fn new(per_minute: u32, burst: u32) -> Self {
        Self { per_minute, burst }
    }

    fn quota(self) -> Quota {
        let nonzero = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        Quota::per_minute(nonzero(self.per_minute)).allow_burst(nonzero(self.burst))
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (rate, burst) = s
            .split_once(':')
            .ok_or("expected <per minute>:<burst>, e.g. 10:10")?;
        let positive = |what: &str, n: &str| match n.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{what} must be a whole number above 0")),
        };
        Ok(Self::new(
            positive("the rate per minute", rate)?,
            positive("the burst", burst)?,
        ))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.per_minute, self.burst)
    }
}

/// One RPC's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcLimit {
    /// For each account the call names.
    pub per_key: Rate,
    /// For all callers together.
    pub overall: Rate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingConfig {
    /// Hashes run at once; each holds 19 MiB until it ends.
    pub concurrency: usize,
    /// Hashes that may wait for a free slot; the next gets 503.
    pub queue: usize,
}

impl Default for HashingConfig {
    fn default() -> Self {
        // Counts the cgroup's CPU quota, i.e. the pod's limit, on Linux.
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            concurrency: cores,
            queue: cores * 8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Per email.
    pub sign_in: RpcLimit,
    /// Per email.
    pub sign_up: RpcLimit,
    /// Per refresh token.
    pub refresh: RpcLimit,
    /// Per API key. The gateway exchanges the key on every ingest request,
    /// so this follows an ingest client's request rate, not a person's.
    pub exchange_api_key: RpcLimit,
    /// How often limiter state of keys that are back to a full burst is dropped.
    pub prune_every: Duration,
    pub hashing: HashingConfig,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            sign_in: RpcLimit {
                per_key: Rate::new(10, 10),
                overall: Rate::new(6_000, 600),
            },
            sign_up: RpcLimit {
                per_key: Rate::new(10, 10),
                overall: Rate::new(600, 60),
            },
            refresh: RpcLimit {
                per_key: Rate::new(10, 10),
                overall: Rate::new(30_000, 3_000),
            },
            exchange_api_key: RpcLimit {
                per_key: Rate::new(6_000, 600),
                overall: Rate::new(30_000, 3_000),
            },
            prune_every: Duration::from_secs(60),
            hashing: HashingConfig::default(),
        }
    }
}

impl LimitsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let rpc = |name: &str, default: RpcLimit| -> Result<RpcLimit, ConfigError> {
            Ok(RpcLimit {
                per_key: config::or(&format!("SMSOPS_AUTH_{name}_RATE"), default.per_key)?,
                overall: config::or(&format!("SMSOPS_AUTH_{name}_TOTAL_RATE"), default.overall)?,
            })
        };
        let concurrency = match config::or("SMSOPS_AUTH_HASH_CONCURRENCY", 0_usize)? {
            0 => defaults.hashing.concurrency,
            n => n,
        };
        let prune_every = config::secs_or("SMSOPS_AUTH_LIMITS_PRUNE_SECS", 60)?;
        if prune_every.is_zero() {
            return Err(ConfigError::new(
                "SMSOPS_AUTH_LIMITS_PRUNE_SECS",
                "must be greater than 0",
            ));
        }
        Ok(Self {
            sign_in: rpc("SIGN_IN", defaults.sign_in)?,
            sign_up: rpc("SIGN_UP", defaults.sign_up)?,
            refresh: rpc("REFRESH", defaults.refresh)?,
            exchange_api_key: rpc("EXCHANGE", defaults.exchange_api_key)?,
            prune_every,
            hashing: HashingConfig {
                concurrency,
                queue: config::or("SMSOPS_AUTH_HASH_QUEUE", concurrency * 8)?,
            },
        })
    }
}

/// The limiters of one RPC.
struct Limiter {
    /// What the caller is told it tried too often, e.g. "sign-in".
    what: &'static str,
    per_key: DefaultKeyedRateLimiter<String>,
    overall: DefaultDirectRateLimiter,
}

impl Limiter {
    fn new(what: &'static str, limit: RpcLimit) -> Self {
        Self {
            what,
            per_key: RateLimiter::dashmap(limit.per_key.quota()),
            overall: RateLimiter::direct(limit.overall.quota()),
        }
    }

    /// The overall cap is checked first: only calls it lets through can add
    /// a key, so a flood of made-up accounts grows the map no faster than
    /// that cap allows between two prunes.
    fn check(&self, key: String) -> Result<(), ApiError> {
        let clock = DefaultClock::default();
        if let Err(not_until) = self.overall.check() {
            // Debug only: a flood would otherwise be a flood of log lines
            // too; the refusals are counted per method in Prometheus.
            tracing::debug!(rpc = self.what, "rpc rate limited for all callers");
            return Err(refusal(
                format!("too many {} requests; try again later", self.what),
                not_until.wait_time_from(clock.now()),
            ));
        }
        if let Err(not_until) = self.per_key.check_key(&key) {
            tracing::debug!(rpc = self.what, "rpc rate limited for one account");
            return Err(refusal(
                format!(
                    "too many {} attempts for this account; try again later",
                    self.what
                ),
                not_until.wait_time_from(clock.now()),
            ));
        }
        Ok(())
    }

    fn prune(&self) {
        self.per_key.retain_recent();
        self.per_key.shrink_to_fit();
    }
}

fn refusal(message: String, wait: Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = u32::try_from(secs).unwrap_or(u32::MAX);
    ApiError::new(ErrorCode::RateLimited, message).retry_after(secs)
}

/// The rate limits of one auth-svc.
pub struct Limits {
    sign_in: Limiter,
    sign_up: Limiter,
    refresh: Limiter,
    exchange_api_key: Limiter,
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            sign_in: Limiter::new("sign-in", config.sign_in),
            sign_up: Limiter::new("sign-up", config.sign_up),
            refresh: Limiter::new("refresh", config.refresh),
            exchange_api_key: Limiter::new("api key exchange", config.exchange_api_key),
        }
    }

    /// [`Limits::new`], pruned every `prune_every` for as long as it is in use.
    pub fn start(config: &LimitsConfig) -> Arc<Self> {
        let limits = Arc::new(Self::new(config));
        let weak: Weak<Self> = Arc::downgrade(&limits);
        let every = config.prune_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(limits) = weak.upgrade() else {
                    return;
                };
                limits.prune();
            }
        });
        limits
    }

    pub fn sign_in(&self, email: &str) -> Result<(), ApiError> {
        self.sign_in.check(email_key(email))
    }

    pub fn sign_up(&self, email: &str) -> Result<(), ApiError> {
        self.sign_up.check(email_key(email))
    }

    pub fn refresh(&self, refresh_token: &str) -> Result<(), ApiError> {
        self.refresh.check(secret_key(refresh_token))
    }

    pub fn exchange_api_key(&self, key: &str) -> Result<(), ApiError> {
        self.exchange_api_key.check(api_key_key(key))
    }

    /// Forgets the keys whose limiter is back to a full burst: they would
    /// behave the same if seen for the first time.
    pub fn prune(&self) {
        for limiter in self.limiters() {
            limiter.prune();
        }
    }

    /// How many keys are remembered, over all RPCs.
    pub fn keys(&self) -> usize {
        self.limiters().iter().map(|l| l.per_key.len()).sum()
    }

    fn limiters(&self) -> [&Limiter; 4] {
        [
            &self.sign_in,
            &self.sign_up,
            &self.refresh,
            &self.exchange_api_key,
        ]
    }
}

/// The email as sign-in matches it (trimmed, any case), so `A@x.io` and
/// ` a@x.io` share one budget; bounded, since it is kept until pruned.
fn email_key(email: &str) -> String {
    bounded(email.trim().to_lowercase())
}

/// A secret is not kept in memory as it is.
fn secret_key(secret: &str) -> String {
    let hash = digest::digest(&digest::SHA256, secret.as_bytes());
    hash.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `smk_<id>_<secret>`: the id names the key (the secret, base64url, may
/// hold `_` itself); a key of any other form is kept only as a hash.
fn api_key_key(key: &str) -> String {
    match key
        .trim()
        .strip_prefix("smk_")
        .and_then(|rest| rest.split_once('_'))
    {
        Some((id, _secret)) => bounded(format!("smk_{id}")),
        None => secret_key(key),
    }
}

fn bounded(mut key: String) -> String {
    const MAX_KEY_BYTES: usize = 256;
    if key.len() > MAX_KEY_BYTES {
        let mut end = MAX_KEY_BYTES;
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        key.truncate(end);
    }
    key
}

/// At most `concurrency` password hashes at once in this process, and at
/// most `queue` waiting for one: memory is the process's, so the pool is too.
pub struct HashingPool {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
}

/// A hash may run while this is held: move it into the blocking task, so
/// the slot is freed when the hash ends, not when its caller gives up.
pub struct HashingSlot {
    _running: OwnedSemaphorePermit,
    _admitted: OwnedSemaphorePermit,
}

impl HashingPool {
    pub fn new(config: HashingConfig) -> Self {
        let concurrency = config.concurrency.max(1);
        Self {
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(concurrency.saturating_add(config.queue))),
        }
    }

    /// A slot, once one is free; 503 `unavailable` at once when the queue is full.
    pub async fn slot(&self) -> Result<HashingSlot, ApiError> {
        let busy = || {
            tracing::debug!("password hashing pool full, refusing");
            ApiError::new(
                ErrorCode::Unavailable,
                "too many sign-ins at once; try again in a moment",
            )
            .retry_after(1)
        };
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy())?;
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| busy())?;
        Ok(HashingSlot {
            _running: running,
            _admitted: admitted,
        })
    }
}

static HASHING: OnceLock<HashingPool> = OnceLock::new();

/// Sizes the process's hashing pool; the first call wins (services that
/// share a process, as in the tests, share it), and `false` says so.
pub fn configure_hashing(config: HashingConfig) -> bool {
    let mut fresh = false;
    HASHING.get_or_init(|| {
        fresh = true;
        HashingPool::new(config)
    });
    fresh
}

/// The process's hashing pool, sized by [`configure_hashing`] or to the cores.
pub fn hashing() -> &'static HashingPool {
    HASHING.get_or_init(|| HashingPool::new(HashingConfig::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tight(per_key: Rate, overall: Rate) -> LimitsConfig {
        let limit = RpcLimit { per_key, overall };
        LimitsConfig {
            sign_in: limit,
            sign_up: limit,
            refresh: limit,
            exchange_api_key: limit,
            ..LimitsConfig::default()
        }
    }

    #[test]
    fn rates_parse_from_the_environment_form() {
        assert_eq!("10:5".parse::<Rate>(), Ok(Rate::new(10, 5)));
        assert_eq!(" 6000 : 600 ".parse::<Rate>(), Ok(Rate::new(6000, 600)));
        for bad in ["10", "0:1", "1:0", "-1:3", "a:b", ""] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?}");
        }
        assert_eq!(Rate::new(10, 5).to_string(), "10:5");
    }

    #[test]
    fn one_account_is_limited_and_another_is_not() {
        let limits = Limits::new(&tight(Rate::new(1, 3), Rate::new(60_000, 1_000)));
        for _ in 0..3 {
            limits.sign_in("victim@smsops.test").unwrap();
        }
        let refused = limits.sign_in(" Victim@SMSOPS.test").unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        let retry = refused.retry_after.unwrap();
        assert!((1..=60).contains(&retry), "retry after {retry}");
        limits.sign_in("other@smsops.test").unwrap();
        // Each RPC has its own budget.
        limits.sign_up("victim@smsops.test").unwrap();
    }

    #[test]
    fn the_overall_cap_holds_across_accounts() {
        let limits = Limits::new(&tight(Rate::new(60, 60), Rate::new(1, 2)));
        limits.sign_in("a@smsops.test").unwrap();
        limits.sign_in("b@smsops.test").unwrap();
        let refused = limits.sign_in("c@smsops.test").unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert!(refused.message.contains("too many sign-in requests"));
        // Refused by the overall cap, so never remembered.
        assert_eq!(limits.keys(), 2);
    }

    #[test]
    fn keys_name_accounts_not_secrets() {
        let key = "smk_0190abcdef_c2Vj_cmV0LXNlY3JldC1zZWNyZXQ";
        assert_eq!(api_key_key(key), "smk_0190abcdef");
        assert_eq!(api_key_key("not-a-key").len(), 32);
        assert!(!secret_key("refresh-token").contains("refresh"));
        assert_eq!(secret_key("t").len(), 32);
        assert_eq!(bounded("é".repeat(200)).len(), 256);
        let limits = Limits::new(&tight(Rate::new(1, 1), Rate::new(60_000, 1_000)));
        limits.exchange_api_key(key).unwrap();
        // Another secret for the same key id spends the same budget.
        let guess = "smk_0190abcdef_Z3Vlc3M";
        assert_eq!(
            limits.exchange_api_key(guess).unwrap_err().code,
            ErrorCode::RateLimited
        );
    }

    #[test]
    fn production_defaults_bound_guessing_one_password() {
        let limits = Limits::new(&LimitsConfig::default());
        let allowed = (0..50)
            .filter(|_| limits.sign_in("victim@smsops.test").is_ok())
            .count();
        assert_eq!(allowed, 10);
    }

    #[test]
    fn keys_back_to_a_full_burst_are_pruned() {
        // One call every 100 ms; governor keeps a key until two intervals
        // after its last use.
        let limits = Limits::new(&tight(Rate::new(600, 1), Rate::new(60_000, 1_000)));
        limits.sign_in("a@smsops.test").unwrap();
        limits.refresh("some-token").unwrap();
        assert_eq!(limits.keys(), 2);
        limits.prune();
        assert_eq!(limits.keys(), 2, "just used");
        std::thread::sleep(Duration::from_millis(300));
        limits.prune();
        assert_eq!(limits.keys(), 0);
    }

    #[tokio::test]
    async fn a_full_pool_answers_unavailable_with_retry_after() {
        let pool = HashingPool::new(HashingConfig {
            concurrency: 1,
            queue: 1,
        });
        let running = pool.slot().await.unwrap();
        let pool = Arc::new(pool);
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.slot().await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the second waits for the first");
        let refused = pool.slot().await.err().unwrap();
        assert_eq!(
            (refused.code, refused.retry_after),
            (ErrorCode::Unavailable, Some(1))
        );
        assert_eq!(refused.code.http_status(), 503);
        drop(running);
        waiting.await.unwrap().unwrap();
        assert_eq!(
            (
                pool.running.available_permits(),
                pool.admitted.available_permits()
            ),
            (1, 2),
            "every slot is given back"
        );
    }
}
