//! The front half's cost per port: resolve the built-in `clean-traffic`
//! DAG and bind it for N ports (each its own IP and MAC), either resolving
//! per port (`bind`) or once for all ports (`FilterDag::bind`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nwfilter_compile::{bind, resolve, BindOutcome, MemorySource};
use nwfilter_model::{FilterName, FilterRef, MacAddr6, Params};

/// N distinct bindings of clean-traffic: IP 10.x.y.z, MAC 52:54:00:…
fn bindings(n: u32) -> Vec<(FilterRef, MacAddr6)> {
    (0..n)
        .map(|i| {
            let [_, a, b, c] = i.to_be_bytes();
            let mut params = Params::default();
            params.push("IP", format!("10.{a}.{b}.{}", c.max(1)));
            let top = FilterRef {
                filter: FilterName::new("clean-traffic").unwrap(),
                params,
            };
            (top, MacAddr6::new(0x52, 0x54, 0x00, a, b, c))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let source = MemorySource::from_iter(nwfilter_model::builtin_filters());
    let mut group = c.benchmark_group("bind_clean_traffic");
    group.sample_size(10);
    for n in [1u32, 100, 10_000] {
        let ports = bindings(n);
        group.throughput(Throughput::Elements(u64::from(n)));
        group.bench_with_input(BenchmarkId::new("resolve_each", n), &ports, |b, ports| {
            b.iter(|| {
                for (top, mac) in ports {
                    let out = bind(&source, top, *mac).unwrap();
                    assert!(matches!(out, BindOutcome::Bound(_)));
                    black_box(out);
                }
            })
        });
        group.bench_with_input(BenchmarkId::new("resolve_once", n), &ports, |b, ports| {
            b.iter(|| {
                let dag = resolve(&source, &ports[0].0.filter).unwrap();
                for (top, mac) in ports {
                    black_box(dag.bind(&top.params, *mac).unwrap());
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
