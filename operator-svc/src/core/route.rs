//! A pair's route: the provider accounts its messages go through, in order
//! of priority, steps of one priority sharing traffic by weight. sms-svc
//! applies it; operator-svc keeps it and checks its shape.

use serde::{Deserialize, Serialize};

use super::OperatorError;

pub const MAX_STEPS: usize = 8;
pub const MAX_WEIGHT: u32 = 1000;
/// Account names are what SMSOPS_PROVIDERS lists (see sms-svc's config).
pub const MAX_NAME_CHARS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStep {
    pub provider: String,
    pub priority: u32,
    pub weight: u32,
}

/// The route as it is kept: steps by priority (stable, so equals keep the
/// order they were given in), every provider once, names lower case.
pub fn validated(steps: Vec<RouteStep>) -> Result<Vec<RouteStep>, OperatorError> {
    if steps.len() > MAX_STEPS {
        return Err(invalid(format!(
            "a route has at most {MAX_STEPS} steps, got {}",
            steps.len()
        )));
    }
    let mut kept: Vec<RouteStep> = Vec::with_capacity(steps.len());
    for step in steps {
        let provider = step.provider.trim().to_ascii_lowercase();
        if !is_account_name(&provider) {
            return Err(invalid(format!(
                "provider must be 1 to {MAX_NAME_CHARS} of a-z, 0-9 and '-', got {:?}",
                step.provider.chars().take(40).collect::<String>()
            )));
        }
        if !(1..=MAX_WEIGHT).contains(&step.weight) {
            return Err(invalid(format!(
                "weight must be 1 to {MAX_WEIGHT}, got {}",
                step.weight
            )));
        }
        if kept.iter().any(|other| other.provider == provider) {
            return Err(invalid(format!(
                "provider {provider} is in the route twice"
            )));
        }
        kept.push(RouteStep { provider, ..step });
    }
    kept.sort_by_key(|step| step.priority);
    Ok(kept)
}

fn is_account_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn invalid(why: String) -> OperatorError {
    OperatorError::InvalidRoute(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(provider: &str, priority: u32, weight: u32) -> RouteStep {
        RouteStep {
            provider: provider.into(),
            priority,
            weight,
        }
    }

    #[test]
    fn kept_by_priority_with_names_lower_case() {
        let route = validated(vec![
            step("twilio", 2, 1),
            step(" SMSC-1 ", 1, 30),
            step("smsc-2", 1, 70),
        ])
        .unwrap();
        let names: Vec<&str> = route.iter().map(|s| s.provider.as_str()).collect();
        assert_eq!(names, ["smsc-1", "smsc-2", "twilio"]);
        assert!(validated(Vec::new()).unwrap().is_empty());
    }

    #[test]
    fn refused() {
        for steps in [
            vec![step("twilio", 1, 0)],
            vec![step("twilio", 1, 1001)],
            vec![step("", 1, 1)],
            vec![step("twi lio", 1, 1)],
            vec![step(&"a".repeat(33), 1, 1)],
            vec![step("twilio", 1, 1), step("TWILIO", 2, 1)],
            (0..9).map(|i| step(&format!("p{i}"), i, 1)).collect(),
        ] {
            assert!(matches!(
                validated(steps),
                Err(OperatorError::InvalidRoute(_))
            ));
        }
    }
}
