//! Rate limits kept in the gateway's memory: sign-in and sign-up per client
//! address, sending SMS and starting sessions per user. Over a limit is 429
//! `rate_limited` with `Retry-After`.
//!
//! Each replica counts on its own, so N replicas let N times the rate
//! through: these stop floods, and the quotas in sms-svc are the business
//! limits.

use std::{
    hash::Hash,
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    sync::{Arc, Weak},
    time::Duration,
};

use actix_web::{
    Error, ResponseError,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};
use smsops_common::{ApiError, ErrorCode};

use crate::{
    client_ip::{TrustedProxies, client_ip},
    config::{GatewayConfig, RateLimit},
    error::HttpError,
};

/// How often keys whose state has run back to "fresh" are dropped: a flood
/// of distinct addresses costs memory for about this long, not for ever.
pub const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// One keyed limiter; `what` finishes "too many ..." in the refusal.
pub struct Limiter<K: Hash + Eq + Clone> {
    inner: DefaultKeyedRateLimiter<K>,
    what: &'static str,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// `None` when the rate or burst is zero.
    pub fn new(rate: RateLimit, what: &'static str) -> Option<Self> {
        let period = Duration::from_secs(60).checked_div(rate.per_minute)?;
        let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(rate.burst)?);
        Some(Self {
            inner: DefaultKeyedRateLimiter::keyed(quota),
            what,
        })
    }

    /// Takes one request from `key`'s allowance.
    pub fn check(&self, key: &K) -> Result<(), ApiError> {
        self.inner.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.inner.clock().now());
            // Whole seconds, rounded up: "0" would invite an immediate retry.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let secs = u32::try_from(secs).unwrap_or(u32::MAX).max(1);
            ApiError::new(
                ErrorCode::RateLimited,
                format!("too many {}, retry in {secs}s", self.what),
            )
            .retry_after(secs)
        })
    }

    /// Drops the keys that are back to a full allowance, and their memory.
    pub fn prune(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// Every limiter of the gateway, shared by its workers.
pub struct Limits {
    pub trusted_proxies: TrustedProxies,
    /// Sign-in and sign-up, per client address.
    pub auth: Limiter<IpAddr>,
    /// `POST /sms`, per user id.
    pub sms: Limiter<String>,
    /// `POST /sessions`, per user id.
    pub sessions: Limiter<String>,
}

impl Limits {
    pub fn new(config: &GatewayConfig) -> Option<Self> {
        Some(Self {
            trusted_proxies: config.trusted_proxies.clone(),
            auth: Limiter::new(config.auth_rate, "attempts from this address")?,
            sms: Limiter::new(config.send_rate, "messages sent by this user")?,
            sessions: Limiter::new(config.send_rate, "sessions started by this user")?,
        })
    }

    /// Prunes every limiter each [`PRUNE_EVERY`] until the gateway (the
    /// last holder of `limits`) is gone.
    pub fn prune_periodically(limits: &Arc<Self>) {
        let limits: Weak<Self> = Arc::downgrade(limits);
        tokio::spawn(async move {
            let start = tokio::time::Instant::now() + PRUNE_EVERY;
            let mut ticks = tokio::time::interval_at(start, PRUNE_EVERY);
            loop {
                ticks.tick().await;
                let Some(limits) = limits.upgrade() else {
                    return;
                };
                limits.prune();
            }
        });
    }

    pub fn prune(&self) {
        self.auth.prune();
        self.sms.prune();
        self.sessions.prune();
    }

    /// The client's address as the trusted proxies tell it.
    pub fn client_ip(&self, req: &ServiceRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        Some(client_ip(peer, req.headers(), &self.trusted_proxies))
    }
}

/// The key for a client address. One IPv6 host can pick any address in its
/// /64, so the /64 is counted as one client.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

/// Middleware for the routes limited per client address.
pub async fn per_address(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(limits) = req.app_data::<web::Data<Limits>>().cloned() else {
        let err = HttpError(ApiError::internal("rate limits missing from app data"));
        return Ok(req
            .into_response(err.error_response())
            .map_into_right_body());
    };
    // Without a peer address (not over TCP) every such caller shares one key.
    let ip = limits
        .client_ip(&req)
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), address_key);
    if let Err(err) = limits.auth.check(&ip) {
        return Ok(req
            .into_response(HttpError(err).error_response())
            .map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Takes one request from `user_id`'s allowance of `limiter`, the check a
/// sending route makes once it knows its caller.
pub fn per_user(limiter: &Limiter<String>, user_id: &str) -> Result<(), HttpError> {
    limiter.check(&user_id.to_string()).map_err(HttpError)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> Limiter<String> {
        Limiter::new(RateLimit { per_minute, burst }, "tries").unwrap()
    }

    #[test]
    fn a_burst_then_429_with_retry_after() {
        let limiter = limiter(6, 3);
        for _ in 0..3 {
            limiter.check(&"a".into()).unwrap();
        }
        let err = limiter.check(&"a".into()).unwrap_err();
        assert_eq!(err.code, ErrorCode::RateLimited);
        // One request every 10 s: the next is due in (just under) 10 s.
        assert_eq!(err.retry_after, Some(10));
        assert_eq!(err.message, "too many tries, retry in 10s");
        // Keys are counted apart.
        limiter.check(&"b".into()).unwrap();
    }

    #[test]
    fn zero_rates_are_refused() {
        assert!(
            Limiter::<String>::new(
                RateLimit {
                    per_minute: 0,
                    burst: 1
                },
                "x"
            )
            .is_none()
        );
        assert!(
            Limiter::<String>::new(
                RateLimit {
                    per_minute: 1,
                    burst: 0
                },
                "x"
            )
            .is_none()
        );
    }

    #[test]
    fn pruning_drops_keys_back_to_a_full_allowance() {
        // 60,000 a minute with a burst of 1: a key is fresh again after 1 ms.
        let limiter = limiter(60_000, 1);
        for n in 0..10_000 {
            limiter.check(&format!("client-{n}")).unwrap();
        }
        assert_eq!(limiter.len(), 10_000);
        std::thread::sleep(Duration::from_millis(20));
        limiter.prune();
        assert_eq!(limiter.len(), 0);

        // A key still inside its window stays, so pruning forgets no limit.
        let slow = self::limiter(1, 1);
        slow.check(&"held".into()).unwrap();
        slow.prune();
        assert_eq!(slow.len(), 1);
        assert!(slow.check(&"held".into()).is_err());
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        assert_eq!(address_key(a).to_string(), "2001:db8:1:2::");
        let v4: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(address_key(v4), v4);
    }
}
