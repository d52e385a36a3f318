//! What a session sends: checked once when it is created, then turned into
//! the message for each sequence number.

use mongodb::bson::DateTime;

use smsops_common::phone;

use super::ProcessError;
use crate::store::PlanDoc;

/// Above this a session is a load test of something else.
pub const MAX_RATE_PER_MINUTE: f64 = 600_000.0;
/// One message an hour. A session holds its pair's lock while it runs, and
/// a slower one would keep the pair from every other session for days
/// between two messages.
pub const MIN_RATE_PER_MINUTE: f64 = 1.0 / 60.0;
pub const MAX_NUMBERS: usize = 10_000;
pub const MAX_BODY: usize = 1600;
/// `{n}` grows a body by at most this many characters (u64::MAX has 20 digits).
const SEQ_DIGITS: usize = 20;

/// A session's config as a caller gives it.
#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    pub rate_per_minute: f64,
    pub numbers: Vec<String>,
    pub range_first: String,
    pub range_count: u64,
    pub template: String,
    pub limit: u64,
    pub stop_at: String,
}

/// Checks a session's config for a pair of `country`; `pair_label` is
/// what `{pair}` becomes.
pub fn check(
    request: PlanRequest,
    country: &str,
    pair_label: &str,
) -> Result<PlanDoc, ProcessError> {
    let rate = check_rate(request.rate_per_minute)?;
    let (numbers, range_first, range_count) = recipients(&request)?;
    in_country(country, &numbers, range_first.as_deref(), range_count)?;
    let longest = request
        .template
        .replace("{pair}", pair_label)
        .chars()
        .count()
        + request.template.matches("{n}").count() * SEQ_DIGITS.saturating_sub(3);
    if request.template.trim().is_empty() {
        return Err(ProcessError::InvalidTemplate(
            "template must not be empty".into(),
        ));
    }
    if longest > MAX_BODY {
        return Err(ProcessError::InvalidTemplate(format!(
            "template must fill in to at most {MAX_BODY} characters"
        )));
    }
    let stop_at = match request.stop_at.trim() {
        "" => None,
        value => Some(
            chrono::DateTime::parse_from_rfc3339(value)
                .map(|at| DateTime::from_millis(at.timestamp_millis()))
                .map_err(|_| {
                    ProcessError::InvalidArgument("stop_at must be an RFC 3339 time".into())
                })?,
        ),
    };
    Ok(PlanDoc {
        rate_per_minute: rate,
        numbers,
        range_first,
        range_count,
        template: request.template,
        limit: i64::try_from(request.limit).unwrap_or(i64::MAX),
        stop_at,
    })
}

/// A rate a session may run at: from one message an hour to
/// [`MAX_RATE_PER_MINUTE`]. NaN is in no range, so it is refused too.
pub fn check_rate(rate_per_minute: f64) -> Result<f64, ProcessError> {
    if (MIN_RATE_PER_MINUTE..=MAX_RATE_PER_MINUTE).contains(&rate_per_minute) {
        return Ok(rate_per_minute);
    }
    Err(ProcessError::InvalidRate(format!(
        "rate_per_minute must be from 1/60 (one message an hour, {MIN_RATE_PER_MINUTE}) \
         to {MAX_RATE_PER_MINUTE}, got {rate_per_minute}"
    )))
}

fn recipients(request: &PlanRequest) -> Result<(Vec<String>, Option<String>, i64), ProcessError> {
    let has_range = !request.range_first.trim().is_empty() || request.range_count > 0;
    match (request.numbers.is_empty(), has_range) {
        (true, false) => Err(ProcessError::InvalidRecipients(
            "recipients must list numbers or give a range".into(),
        )),
        (false, true) => Err(ProcessError::InvalidRecipients(
            "recipients take numbers or a range, not both".into(),
        )),
        (false, false) => {
            if request.numbers.len() > MAX_NUMBERS {
                return Err(ProcessError::InvalidRecipients(format!(
                    "at most {MAX_NUMBERS} numbers; use a range for more"
                )));
            }
            let numbers = request
                .numbers
                .iter()
                .enumerate()
                .map(|(i, number)| {
                    e164(number).ok_or_else(|| {
                        ProcessError::InvalidPhone(format!(
                            "recipients.numbers[{i}] is not an E.164 number"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((numbers, None, 0))
        }
        (true, true) => {
            let first = e164(&request.range_first).ok_or_else(|| {
                ProcessError::InvalidPhone("recipients.range.first is not an E.164 number".into())
            })?;
            let digits = first.len() - 1;
            let room = 10u64.pow(digits as u32) - digits_value(&first);
            if request.range_count == 0 || request.range_count > room {
                return Err(ProcessError::InvalidRecipients(format!(
                    "recipients.range.count must be 1 to {room} for that first number"
                )));
            }
            Ok((Vec::new(), Some(first), request.range_count as i64))
        }
    }
}

/// Every number the session would send to is dialled under the pair's
/// calling code. A range's numbers share one width, so those between its
/// first and last share their calling code: two checks cover it.
fn in_country(
    country: &str,
    numbers: &[String],
    range_first: Option<&str>,
    range_count: i64,
) -> Result<(), ProcessError> {
    let refuse = |which: String| {
        let code = phone::calling_code(country).map_or("none".into(), |code| format!("+{code}"));
        Err(ProcessError::NumberNotInCountry(format!(
            "{which} is not under the calling code of the pair's country {country} ({code})"
        )))
    };
    for (i, number) in numbers.iter().enumerate() {
        if !phone::in_country(country, number) {
            return refuse(format!("recipients.numbers[{i}]"));
        }
    }
    if let Some(first) = range_first {
        let width = first.len() - 1;
        let last = format!(
            "+{:0width$}",
            digits_value(first) + (range_count.max(1) as u64 - 1)
        );
        if !phone::in_country(country, first) {
            return refuse("recipients.range.first".into());
        }
        if !phone::in_country(country, &last) {
            return refuse(format!("the range's last number {last}"));
        }
    }
    Ok(())
}

/// `+` and 8 to 15 digits, the first not 0; spaces and dashes dropped.
fn e164(raw: &str) -> Option<String> {
    let cleaned: String = raw
        .trim()
        .chars()
        .filter(|c| *c != ' ' && *c != '-')
        .collect();
    let digits = cleaned.strip_prefix('+')?;
    let ok = (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    ok.then_some(cleaned)
}

fn digits_value(number: &str) -> u64 {
    number[1..].parse().unwrap_or(0)
}

impl PlanDoc {
    /// The recipient of message `seq`: the numbers in turn, round and round.
    pub fn recipient(&self, seq: u64) -> String {
        if let Some(first) = &self.range_first {
            let count = self.range_count.max(1) as u64;
            let width = first.len() - 1;
            return format!("+{:0width$}", digits_value(first) + seq % count);
        }
        let len = self.numbers.len().max(1) as u64;
        self.numbers
            .get((seq % len) as usize)
            .cloned()
            .unwrap_or_default()
    }

    pub fn body(&self, seq: u64, pair_label: &str) -> String {
        self.template
            .replace("{pair}", pair_label)
            .replace("{n}", &seq.to_string())
    }

    /// Messages per second.
    pub fn rate_per_second(&self) -> f64 {
        self.rate_per_minute / 60.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> PlanRequest {
        PlanRequest {
            rate_per_minute: 600.0,
            numbers: vec!["+447700900001".into(), "+44 7700-900002".into()],
            template: "hello {n} from {pair}".into(),
            ..PlanRequest::default()
        }
    }

    #[test]
    fn a_good_plan_fills_in_its_messages() {
        let plan = check(request(), "GB", "GB/Vodafone").unwrap();
        assert_eq!(plan.recipient(0), "+447700900001");
        assert_eq!(plan.recipient(3), "+447700900002");
        assert_eq!(plan.body(7, "GB/Vodafone"), "hello 7 from GB/Vodafone");
    }

    #[test]
    fn a_range_counts_up_and_wraps() {
        let plan = check(
            PlanRequest {
                numbers: vec![],
                range_first: "+447700900998".into(),
                range_count: 3,
                ..request()
            },
            "GB",
            "GB/x",
        )
        .unwrap();
        assert_eq!(plan.recipient(0), "+447700900998");
        assert_eq!(plan.recipient(2), "+447700901000");
        assert_eq!(plan.recipient(3), "+447700900998");
    }

    #[test]
    fn rates_run_from_one_an_hour_to_the_maximum() {
        for rate in [1.0 / 60.0, 0.016_666_666_666_666_666, 1.0, 600.0, 600_000.0] {
            assert_eq!(check_rate(rate).unwrap(), rate);
        }
        for rate in [
            1e-7,
            1.0 / 61.0,
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            600_001.0,
        ] {
            assert!(check_rate(rate).is_err(), "{rate} was taken");
        }
        let slow = PlanRequest {
            rate_per_minute: 1e-7,
            ..request()
        };
        let err = smsops_common::ApiError::from(check(slow, "GB", "GB/x").unwrap_err());
        assert_eq!(err.code.as_str(), "invalid_rate");
        assert!(
            err.message.contains("one message an hour"),
            "{}",
            err.message
        );
    }

    #[test]
    fn bad_plans_get_their_codes() {
        let code = |req: PlanRequest| {
            smsops_common::ApiError::from(check(req, "GB", "GB/x").unwrap_err())
                .code
                .as_str()
        };
        for rate in [
            0.0,
            -5.0,
            f64::NAN,
            f64::INFINITY,
            1e9,
            1e-7,
            0.0166,
            600_000.1,
        ] {
            assert_eq!(
                code(PlanRequest {
                    rate_per_minute: rate,
                    ..request()
                }),
                "invalid_rate"
            );
        }
        assert_eq!(
            code(PlanRequest {
                numbers: vec![],
                ..request()
            }),
            "invalid_recipients"
        );
        assert_eq!(
            code(PlanRequest {
                numbers: vec!["12345".into()],
                ..request()
            }),
            "invalid_phone"
        );
        assert_eq!(
            code(PlanRequest {
                template: "x".repeat(1601),
                ..request()
            }),
            "invalid_template"
        );
        assert_eq!(
            code(PlanRequest {
                template: " ".into(),
                ..request()
            }),
            "invalid_template"
        );
        assert_eq!(
            code(PlanRequest {
                range_first: "+447700900000".into(),
                range_count: 5,
                ..request()
            }),
            "invalid_recipients"
        );
        assert_eq!(
            code(PlanRequest {
                numbers: vec!["+447700900001".into(), "+12025550100".into()],
                ..request()
            }),
            "number_not_in_country"
        );
        // A range that runs from +44 into +45.
        assert_eq!(
            code(PlanRequest {
                numbers: vec![],
                range_first: "+449999999998".into(),
                range_count: 3,
                ..request()
            }),
            "number_not_in_country"
        );
    }
}
