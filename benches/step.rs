//! Criterion benches of one whole training step (forward + loss + backward + Adam) and one
//! inference pass per model, on a synthetic batch of 1000 pictures; `alphanet bench` reports the
//! same as samples/s. Run: `cargo bench --bench step [-- FILTER]`.

use alphanet::app::bench::{model_configs, synthetic_batch};
use alphanet::autograd::adam::AdamConfig;
use alphanet::model::Model;
use alphanet::train::step::train_step;
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

const B: usize = 1000;

fn steps(c: &mut Criterion) {
    alphanet::util::system::keep_freed_memory();
    let mut group = c.benchmark_group("step");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for (model, ops) in [
        ("v2", "peer6"),
        ("v2", "all"),
        ("v2.1", "all"),
        ("v2.2", "all"),
        ("v2.3", "all"),
        ("v1", "all"),
        ("v3", "all"),
    ] {
        let (cfg, loss) = model_configs(model, ops, 0).expect("bench model");
        let mut m = Model::<f32>::new(&cfg).expect("bench model");
        let batch = synthetic_batch(&cfg, B, 0);
        let adam = AdamConfig::default();
        let mut step = 0;
        group.bench_function(format!("train {model} ops={ops} batch={B}"), |bch| {
            bch.iter(|| {
                step += 1;
                train_step(&mut m, &batch, &loss, &adam, step)
            })
        });
        group.bench_function(format!("predict {model} ops={ops} batch={B}"), |bch| {
            bch.iter(|| m.predict(batch.x.clone(), B))
        });
    }
    group.finish();
}

criterion_group!(benches, steps);
criterion_main!(benches);
