//! How fast this machine is today, for the benchmarks to print beside their
//! figures. Machines of one kind differ from day to day: the same bench-sms
//! build has measured a median of 2,929 msg/s on one and 1,400-2,250 on
//! another, which also took three times as long to pass a byte between two
//! threads over loopback. A figure means little without these two numbers.

use std::{
    hint::black_box,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    time::{Duration, Instant},
};

/// One core's speed and the cost of a loopback round trip between threads.
pub struct Reference {
    /// A fixed integer workload on one core.
    pub cpu: Duration,
    /// One 64-byte TCP message and its answer, averaged.
    pub round_trip: Duration,
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cpu loop {} ms, loopback round trip {:.1} µs",
            self.cpu.as_millis(),
            self.round_trip.as_secs_f64() * 1e6
        )
    }
}

/// Measures both; takes about a second. Run it before anything else starts.
pub fn reference() -> std::io::Result<Reference> {
    Ok(Reference {
        cpu: cpu_loop(),
        round_trip: round_trip(20_000)?,
    })
}

fn cpu_loop() -> Duration {
    let started = Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut sum: u64 = 0;
    for _ in 0..100_000_000u32 {
        // xorshift: a dependent chain the compiler cannot fold or vectorise.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum = sum.wrapping_add(black_box(x));
    }
    black_box(sum);
    started.elapsed()
}

fn round_trip(times: u32) -> std::io::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut buf = [0u8; 64];
        while stream.read_exact(&mut buf).is_ok() {
            stream.write_all(&buf)?;
        }
        Ok(())
    });
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut buf = [7u8; 64];
    let started = Instant::now();
    for _ in 0..times {
        stream.write_all(&buf)?;
        stream.read_exact(&mut buf)?;
    }
    let took = started.elapsed();
    drop(stream);
    echo.join()
        .map_err(|_| std::io::Error::other("the echo thread panicked"))??;
    Ok(took / times)
}

/// CPU time the whole machine (every process, all cores) was busy.
pub fn busy_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    // user nice system idle iowait irq softirq: busy is all but idle and
    // iowait. Steal, next, is time the host gave to others.
    let ticks: u64 = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(7)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on every Linux this project runs on.
    Duration::from_millis(ticks * 10)
}

/// A process's peak resident memory (VmHWM) in MiB: `"self"` or a pid.
pub fn peak_rss_mib(pid: impl std::fmt::Display) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// A process's resident memory now (VmRSS) in MiB: `"self"` or a pid.
pub fn rss_mib(pid: impl std::fmt::Display) -> f64 {
    status_mib(pid, "VmRSS:")
}

fn status_mib(pid: impl std::fmt::Display, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// CPU time (user and system) every running process has used so far, summed
/// by name: the program's file name, with the service a `replica` runs.
pub fn cpu_by_process() -> std::collections::HashMap<String, Duration> {
    let mut used = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return used;
    };
    for entry in entries.flatten() {
        let pid = entry.file_name();
        let Some(pid) = pid
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let (Ok(stat), Ok(cmdline)) = (
            std::fs::read_to_string(format!("/proc/{pid}/stat")),
            std::fs::read(format!("/proc/{pid}/cmdline")),
        ) else {
            continue;
        };
        // The name in parentheses may hold spaces: count fields after it.
        let Some((_, fields)) = stat.rsplit_once(')') else {
            continue;
        };
        let ticks: u64 = fields
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse::<u64>().ok())
            .sum();
        if ticks == 0 {
            continue;
        }
        let mut args = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned());
        let program = args.next().unwrap_or_default();
        let program = program.rsplit('/').next().unwrap_or_default().to_string();
        let name = match program.as_str() {
            "replica" => args.next().unwrap_or(program),
            "" => continue,
            _ => program,
        };
        *used.entry(name).or_insert(Duration::ZERO) += Duration::from_millis(ticks * 10);
    }
    used
}

/// What each process used since `before` ([`cpu_by_process`]), most first;
/// those that used under 1 % of the total are left out.
pub fn cpu_since(before: &std::collections::HashMap<String, Duration>) -> Vec<(String, Duration)> {
    let mut used: Vec<(String, Duration)> = cpu_by_process()
        .into_iter()
        .map(|(name, now)| {
            let then = before.get(&name).copied().unwrap_or_default();
            (name, now.saturating_sub(then))
        })
        .collect();
    let total: Duration = used.iter().map(|(_, d)| *d).sum();
    used.retain(|(_, d)| *d * 100 >= total && !d.is_zero());
    used.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
    used
}

/// `name ms, name ms, ...`: each process's CPU ([`cpu_since`]) per message.
pub fn per_message(used: &[(String, Duration)], messages: usize) -> String {
    let shares: Vec<String> = used
        .iter()
        .map(|(name, used)| {
            let ms = used.as_secs_f64() * 1000.0 / messages.max(1) as f64;
            format!("{name} {ms:.2}")
        })
        .collect();
    shares.join(", ")
}
