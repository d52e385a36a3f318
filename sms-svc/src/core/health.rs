//! Which routes stopped delivering, as notify-svc's route-health rule last
//! said: per pair, the provider accounts its traffic moves off. Each
//! snapshot replaces the last; one not renewed in time is forgotten, so a
//! notify-svc gone quiet leaves every route as configured.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use serde::Deserialize;

/// The snapshot as notify-svc publishes it (docs/events.md).
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    pub sick: Vec<SickRoute>,
    pub probe_share: f64,
    pub valid_for_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SickRoute {
    pub pair_id: String,
    pub provider: String,
}

struct Known {
    /// pair → its sick provider accounts.
    sick: HashMap<String, Vec<String>>,
    probe_share: f64,
    until: Instant,
}

#[derive(Default)]
pub struct RouteHealth {
    known: RwLock<Option<Known>>,
}

impl RouteHealth {
    /// Takes a new snapshot; says what changed, for the log.
    pub fn apply(&self, snapshot: Snapshot) -> Vec<String> {
        let mut sick: HashMap<String, Vec<String>> = HashMap::new();
        for route in snapshot.sick {
            sick.entry(route.pair_id).or_default().push(route.provider);
        }
        let known = Known {
            sick,
            probe_share: snapshot.probe_share.clamp(0.0, 1.0),
            until: Instant::now() + Duration::from_secs(snapshot.valid_for_seconds.max(1)),
        };
        let mut current = match self.known.write() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        let changed = describe_changes(current.as_ref(), &known);
        *current = Some(known);
        changed
    }

    /// Calls `f` with the pair's sick accounts and the probe share (none
    /// and 0 when nothing is known or what is known is too old).
    pub fn with_pair<T>(&self, pair: &str, f: impl FnOnce(&[String], f64) -> T) -> T {
        let known = match self.known.read() {
            Ok(known) => known,
            Err(poisoned) => poisoned.into_inner(),
        };
        match known.as_ref() {
            Some(known) if Instant::now() < known.until => match known.sick.get(pair) {
                Some(sick) => f(sick, known.probe_share),
                None => f(&[], known.probe_share),
            },
            _ => f(&[], 0.0),
        }
    }
}

/// "pair/provider sick" and "pair/provider delivers again" for each
/// route that changed between two snapshots.
fn describe_changes(before: Option<&Known>, after: &Known) -> Vec<String> {
    let routes = |known: Option<&Known>| -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = known
            .into_iter()
            .flat_map(|k| {
                k.sick.iter().flat_map(|(pair, providers)| {
                    providers.iter().map(move |p| (pair.clone(), p.clone()))
                })
            })
            .collect();
        all.sort();
        all
    };
    let (was, now) = (routes(before), routes(Some(after)));
    let mut changes: Vec<String> = now
        .iter()
        .filter(|route| !was.contains(route))
        .map(|(pair, provider)| format!("{pair}/{provider} sick"))
        .collect();
    changes.extend(
        was.iter()
            .filter(|route| !now.contains(route))
            .map(|(pair, provider)| format!("{pair}/{provider} delivers again")),
    );
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(sick: &[(&str, &str)], valid_for_seconds: u64) -> Snapshot {
        Snapshot {
            sick: sick
                .iter()
                .map(|(pair, provider)| SickRoute {
                    pair_id: pair.to_string(),
                    provider: provider.to_string(),
                })
                .collect(),
            probe_share: 0.02,
            valid_for_seconds,
        }
    }

    #[test]
    fn each_snapshot_replaces_the_last() {
        let health = RouteHealth::default();
        assert_eq!(
            health.with_pair("x", |sick, share| (sick.len(), share)),
            (0, 0.0)
        );
        let changed = health.apply(snapshot(&[("x", "smsc")], 10));
        assert_eq!(changed, ["x/smsc sick"]);
        assert_eq!(
            health.with_pair("x", |sick, share| (sick.to_vec(), share)),
            (vec!["smsc".to_string()], 0.02)
        );
        assert!(health.with_pair("y", |sick, _| sick.is_empty()));
        assert!(health.apply(snapshot(&[("x", "smsc")], 10)).is_empty());
        assert_eq!(health.apply(snapshot(&[], 10)), ["x/smsc delivers again"]);
        assert!(health.with_pair("x", |sick, _| sick.is_empty()));
    }

    #[test]
    fn an_old_snapshot_says_nothing() {
        let health = RouteHealth::default();
        health.apply(snapshot(&[("x", "smsc")], 1));
        std::thread::sleep(Duration::from_millis(1100));
        assert!(health.with_pair("x", |sick, _| sick.is_empty()));
    }
}
