//! The server core's cost per grid tick as the number of running 4-player matches grows:
//! every seat's input arriving (`handle_frame`, with decoding and signature check), the
//! grid tick (`handle_timeout`: every match stepped, hashed, its `Tick` queued) and the
//! outputs drained (`poll_transmit` encoding every frame), sans IO: no transport, no async
//! runtime. The clients' side (bots deciding, inputs signed) is prepared outside the timing.
//! Throughput is in matches, so criterion also reports the cost per match-tick.
//!
//! `cargo bench -p pong-bench --bench server`; results in docs/benchmarks.md.

#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pong_bench::fixture::Fixture;

fn server_tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("server_tick");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for matches in [1usize, 10, 100, 1_000, 2_500, 5_000] {
        let mut f = Fixture::new(matches, 4);
        group.throughput(Throughput::Elements(matches as u64));
        group.bench_function(format!("{matches}_matches"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    f.prepare();
                    let start = Instant::now();
                    std::hint::black_box(f.server_tick());
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, server_tick);
criterion_main!(benches);
