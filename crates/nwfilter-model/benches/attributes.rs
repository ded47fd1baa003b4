//! Parsing cost against the number of attributes (issue 23, item 7):
//! a document with N attributes must cost O(N), whether they sit on one
//! element (refused by the pre-scan before the XML parser, whose
//! duplicate check is quadratic per element, sees them) or are spread
//! over many elements of a valid size (parsed, then refused by the model
//! as unknown attributes after the first one it checks).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// `<filter>` whose one `<rule>` carries `n` attributes.
fn one_element(n: usize) -> String {
    let attrs: String = (0..n).map(|i| format!(" a{i}=''")).collect();
    format!("<filter name='f'><rule action='accept' direction='in'{attrs}/></filter>")
}

/// `<filter>` with `n` attributes spread over rules of 50 attributes each
/// (under the per-element limit).
fn spread(n: usize) -> String {
    let per_rule = 50;
    let rule = |first: usize| -> String {
        let attrs: String = (first..(first + per_rule).min(n))
            .map(|i| format!(" a{i}=''"))
            .collect();
        format!("<rule{attrs}/>")
    };
    let rules: String = (0..n).step_by(per_rule).map(rule).collect();
    format!("<filter name='f'>{rules}</filter>")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_filter_attributes");
    group.sample_size(10);
    for n in [10_000usize, 100_000, 1_000_000] {
        group.throughput(Throughput::Elements(n as u64));
        for (shape, doc) in [("one_element", one_element(n)), ("spread", spread(n))] {
            assert!(
                doc.len() <= nwfilter_model::MAX_DOCUMENT_BYTES,
                "{shape} {n}"
            );
            group.bench_with_input(BenchmarkId::new(shape, n), &doc, |b, doc| {
                b.iter(|| {
                    let refused = nwfilter_model::parse_filter(doc).is_err();
                    assert!(refused);
                    black_box(refused)
                })
            });
        }
    }
    group.finish();
    // The XML parser alone on the spread documents: how much of the cost
    // above is roxmltree's.
    let mut group = c.benchmark_group("roxmltree_attributes");
    group.sample_size(10);
    for n in [10_000usize, 100_000, 1_000_000] {
        group.throughput(Throughput::Elements(n as u64));
        let doc = spread(n);
        group.bench_with_input(BenchmarkId::new("spread", n), &doc, |b, doc| {
            b.iter(|| {
                black_box(
                    roxmltree::Document::parse(doc)
                        .unwrap()
                        .descendants()
                        .count(),
                )
            })
        });
    }
    // What the pre-scan spares: the XML parser given one element with N
    // attributes (its duplicate check is quadratic). Small N only.
    for n in [10_000usize, 20_000] {
        group.throughput(Throughput::Elements(n as u64));
        let doc = one_element(n);
        group.bench_with_input(BenchmarkId::new("one_element", n), &doc, |b, doc| {
            b.iter(|| black_box(roxmltree::Document::parse(doc).is_ok()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
