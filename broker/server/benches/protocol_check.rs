//! Throughput of `twinwire protocol check` on a large JSON-lines file, beside a baseline of
//! plain `serde_json::Value` parsing of the same lines in the same run.
//!
//! `cargo bench -p twinwire --bench protocol_check` (set `TWINWIRE_BENCH_MESSAGES` to scale;
//! default 200,000 messages cycled from the 320 reference examples). Prints the median of
//! `TWINWIRE_BENCH_RUNS` (default 7) interleaved runs.

use std::io;
use std::time::{Duration, Instant};
use twinwire::check::{check_input, Tally};
use twinwire_bench::{env_number, percentile, report, Row};
use twinwire_protocol::DEFAULT_MAX_ENVELOPE_BYTES;

fn main() {
    let count = env_number("TWINWIRE_BENCH_MESSAGES", 200_000usize);
    let runs = env_number("TWINWIRE_BENCH_RUNS", 7usize).max(1);
    let lines: Vec<String> = twinwire_tests::protocol_examples()
        .into_iter()
        .flat_map(|e| e.messages)
        .map(|m| m.to_string())
        .collect();
    let mut file = Vec::new();
    for line in lines.iter().cycle().take(count) {
        file.extend_from_slice(line.as_bytes());
        file.push(b'\n');
    }
    let mb = file.len() as f64 / 1e6;

    let check = || {
        let mut tally = Tally::default();
        check_input(
            &file[..],
            None,
            DEFAULT_MAX_ENVELOPE_BYTES,
            &mut io::sink(),
            &mut tally,
        )
        .expect("check");
        assert_eq!(tally.valid, count, "every reference message is valid");
    };
    let baseline = || {
        let mut parsed = 0;
        for line in file.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let value: serde_json::Value = serde_json::from_slice(line).expect("JSON");
            parsed += usize::from(value.is_object());
        }
        assert_eq!(parsed, count);
    };

    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        check();
        ours.push(t.elapsed());
        let t = Instant::now();
        baseline();
        base.push(t.elapsed());
    }
    ours.sort();
    base.sort();
    let (ours, base) = (percentile(&ours, 0.5), percentile(&base, 0.5));
    let row = |name: &str, d: Duration| {
        let s = d.as_secs_f64();
        println!(
            "{name:<44} {:>12.0} msg/s {:>9.1} MB/s {:>9.1} ms",
            count as f64 / s,
            mb / s,
            s * 1e3
        );
    };
    println!("protocol check throughput: {count} messages, {mb:.1} MB, median of {runs} runs");
    row("twinwire protocol check (split+parse+classify)", ours);
    row("baseline: serde_json::Value per line", base);
    println!(
        "ratio twinwire/baseline throughput: {:.2}",
        base.as_secs_f64() / ours.as_secs_f64()
    );
    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    report(&[Row::new(
        "protocol check (split, parse, classify)",
        "messages/s",
        rate(ours),
    )
    .baseline("serde_json::Value per line", rate(base))]);
}
