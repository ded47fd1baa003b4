//! compile + render of clean-traffic for 1, 100 and 10 000 bindings.
//!
//! Each binding has its own port, MAC and IP, so nothing is shared between
//! them except the parsed filter set (as in the daemon, which parses the
//! filters once). Per binding: resolve the DAG, bind the variables, lower,
//! name and spell the chains, and write the restore input the applier
//! would send. Throughput is reported per binding.

use std::hint::black_box;

use backend_xtables::render::{restore_text, ruleset};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nwfilter_compile::{
    compile, compile_dag, lower, resolve, BindOutcome, BoundRules, Compiled, MemorySource,
};
use nwfilter_model::{builtin_filters, FilterName, FilterRef, IfName, MacAddr6, Params};

struct Port {
    dev: IfName,
    mac: MacAddr6,
    top: FilterRef,
}

fn ports(n: usize) -> Vec<Port> {
    (0..n)
        .map(|i| {
            let (hi, lo) = ((i >> 8) as u8, i as u8);
            let mut params = Params::default();
            params.push("IP", format!("10.{hi}.{lo}.2"));
            Port {
                dev: IfName::new(format!("vnet{i}")).unwrap(),
                mac: MacAddr6::new(0x52, 0x54, 0x00, 0x00, hi, lo),
                top: FilterRef {
                    filter: FilterName::new("clean-traffic").unwrap(),
                    params,
                },
            }
        })
        .collect()
}

fn render(compiled: Compiled) -> String {
    let Compiled::Program(program) = compiled else {
        panic!("IP is bound");
    };
    restore_text(&ruleset(&program).unwrap()).unwrap()
}

/// The whole path per binding, as `binding-create` takes it.
fn full(c: &mut Criterion) {
    let source = MemorySource::from_iter(builtin_filters());
    let mut group = c.benchmark_group("compile_render_clean_traffic");
    group.sample_size(10);
    for n in [1usize, 100, 10_000] {
        let ports = ports(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &ports, |b, ports| {
            b.iter(|| {
                for p in ports {
                    black_box(render(compile(&source, &p.top, p.mac, &p.dev).unwrap()));
                }
            })
        });
    }
    group.finish();
}

/// Where the time goes, for 100 bindings: the DAG resolved once and
/// shared; and lowering + rendering alone, from already bound rules.
fn stages(c: &mut Criterion) {
    let source = MemorySource::from_iter(builtin_filters());
    let ports = ports(100);
    let dag = resolve(&source, &ports[0].top.filter).unwrap();
    let mut group = c.benchmark_group("clean_traffic_stages_100");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100));
    group.bench_function("bind_lower_render_shared_dag", |b| {
        b.iter(|| {
            for p in &ports {
                black_box(render(
                    compile_dag(&dag, &p.top.params, p.mac, &p.dev).unwrap(),
                ));
            }
        })
    });
    let bound: Vec<BoundRules> = ports
        .iter()
        .map(|p| match dag.bind(&p.top.params, p.mac).unwrap() {
            BindOutcome::Bound(rules) => rules,
            BindOutcome::AwaitingIp { .. } => panic!("IP is bound"),
        })
        .collect();
    group.bench_function("lower_render", |b| {
        b.iter(|| {
            for (p, rules) in ports.iter().zip(&bound) {
                let program = lower(rules, &p.dev).unwrap();
                black_box(restore_text(&ruleset(&program).unwrap()).unwrap());
            }
        })
    });
    let programs: Vec<_> = ports
        .iter()
        .zip(&bound)
        .map(|(p, rules)| lower(rules, &p.dev).unwrap())
        .collect();
    group.bench_function("ruleset", |b| {
        b.iter(|| {
            for program in &programs {
                black_box(ruleset(program).unwrap());
            }
        })
    });
    let rulesets: Vec<_> = programs.iter().map(|p| ruleset(p).unwrap()).collect();
    group.bench_function("restore_text", |b| {
        b.iter(|| {
            for rs in &rulesets {
                black_box(restore_text(rs).unwrap());
            }
        })
    });
    group.bench_function("lower", |b| {
        b.iter(|| {
            for (p, rules) in ports.iter().zip(&bound) {
                black_box(lower(rules, &p.dev).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, full, stages);
criterion_main!(benches);
