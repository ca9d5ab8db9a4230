//! Benchmark of the hybrid index on synthetic data (not a timed test).
//!
//! `cargo run --release -p roster-index --example search_bench -- --records N
//!  [--dims 384] [--queries 1000] [--tenants T] [--quant f16] [--connectivity 16]
//!  [--expansion-add 128] [--expansion-search 256] [--filtered-expansion-search 64]
//!  [--batch 10000] [--recall-queries Q] [--noise 0.068] [--candidates C]
//!  [--dir PATH (build there, or reuse an index built there)] [--no-reopen]`
//!
//! Data: text of 20–80 words from a Zipf vocabulary of 30k words (a quarter of
//! them from the record's cluster topic), 384-d vectors from ~1000 Gaussian
//! clusters, normalised. Partitions: 1% of records in (t0, src:small), 5% in
//! (t0, src:mid), the rest in (t<i % T>, ns:main). Queries: a vector near a
//! random cluster centre plus 3–6 words. Prints JSON lines: build, memory,
//! p50/p99 latencies per path and partition case, recall@10 of ANN vs exact
//! vectors and of hybrid vs hybrid-with-exact-vectors.
//! Owns nothing the library uses; must never be run as part of `cargo test`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roster_index::{
    fuse, Change, Doc, Hit, IndexOptions, Quantization, Query, SearchIndex, VectorStrategy,
};
use serde_json::json;

struct Args {
    records: usize,
    dims: usize,
    queries: usize,
    tenants: usize,
    quant: Quantization,
    connectivity: usize,
    expansion_add: usize,
    expansion_search: usize,
    filtered_expansion_search: usize,
    batch: usize,
    recall_queries: usize,
    noise: f64,
    clusters: usize,
    reopen: bool,
    candidates: Option<usize>,
    dir: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        records: 10_000,
        dims: 384,
        queries: 1000,
        tenants: 1,
        quant: IndexOptions::default().quantization,
        connectivity: IndexOptions::default().connectivity,
        expansion_add: IndexOptions::default().expansion_add,
        expansion_search: IndexOptions::default().expansion_search,
        filtered_expansion_search: IndexOptions::default().filtered_expansion_search,
        batch: 10_000,
        recall_queries: usize::MAX,
        noise: 0.068,
        clusters: 1000,
        reopen: true,
        candidates: None,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--no-reopen" {
            a.reopen = false;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let num = || value.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--records" => a.records = num()?,
            "--dims" => a.dims = num()?,
            "--queries" => a.queries = num()?,
            "--tenants" => a.tenants = num()?.max(1),
            "--connectivity" => a.connectivity = num()?,
            "--expansion-add" => a.expansion_add = num()?,
            "--expansion-search" => a.expansion_search = num()?,
            "--filtered-expansion-search" => a.filtered_expansion_search = num()?,
            "--batch" => a.batch = num()?.max(1),
            "--recall-queries" => a.recall_queries = num()?,
            "--clusters" => a.clusters = num()?.max(1),
            "--candidates" => a.candidates = Some(num()?),
            "--dir" => a.dir = Some(value.clone().into()),
            "--noise" => a.noise = value.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--quant" => a.quant = Quantization::parse(&value).ok_or("--quant f32|f16|i8")?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    a.recall_queries = a.recall_queries.min(a.queries);
    Ok(a)
}

const VOCAB: usize = 30_000;
const TOPIC_WORDS: usize = 20;

/// A pronounceable, unique word per rank (syllables as base-100 digits).
fn word(rank: usize) -> String {
    const C: &[u8] = b"bdfgklmnprstvz";
    const V: &[u8] = b"aeiou";
    let mut r = rank;
    let mut s = String::new();
    loop {
        let d = r % 70;
        s.push(C[d % 14] as char);
        s.push(V[d / 14] as char);
        r /= 70;
        if r == 0 {
            break;
        }
    }
    s.push('x');
    s
}

struct Gen {
    rng: StdRng,
    zipf_cdf: Vec<f64>,
    words: Vec<String>,
    centres: Vec<Vec<f32>>,
    noise: f64,
}

impl Gen {
    fn new(seed: u64, dims: usize, clusters: usize, noise: f64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut acc = 0.0;
        let zipf_cdf = (0..VOCAB)
            .map(|r| {
                acc += 1.0 / (r as f64 + 1.0);
                acc
            })
            .collect::<Vec<_>>();
        let total = acc;
        let zipf_cdf = zipf_cdf.into_iter().map(|c| c / total).collect();
        let words = (0..VOCAB).map(word).collect();
        let centres = (0..clusters)
            .map(|_| {
                let v: Vec<f32> = (0..dims).map(|_| gauss(&mut rng) as f32).collect();
                normalise(v)
            })
            .collect();
        Gen {
            rng,
            zipf_cdf,
            words,
            centres,
            noise,
        }
    }

    fn zipf_word(&mut self) -> &str {
        let u: f64 = self.rng.gen();
        let i = self.zipf_cdf.partition_point(|&c| c < u).min(VOCAB - 1);
        &self.words[i]
    }

    fn topic_word(&mut self, cluster: usize) -> &str {
        let j = self.rng.gen_range(0..TOPIC_WORDS);
        // Topic words are mid-frequency ranks, distinct per cluster.
        let rank = 1000 + (cluster * 37 + j * 7919) % (VOCAB - 1000);
        &self.words[rank]
    }

    fn text(&mut self, cluster: usize, len: usize, topic_share: f64) -> String {
        let mut out = String::with_capacity(len * 8);
        for _ in 0..len {
            let topical = self.rng.gen_bool(topic_share);
            let w = if topical {
                self.topic_word(cluster).to_owned()
            } else {
                self.zipf_word().to_owned()
            };
            out.push_str(&w);
            out.push(' ');
        }
        out
    }

    fn near_centre(&mut self, cluster: usize) -> Vec<f32> {
        let noise = self.noise;
        let centre = &self.centres[cluster];
        let mut v = Vec::with_capacity(centre.len());
        for &c in centre.iter() {
            v.push(c + (noise * gauss(&mut self.rng)) as f32);
        }
        normalise(v)
    }
}

fn gauss(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn normalise(v: Vec<f32>) -> Vec<f32> {
    let n = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.into_iter().map(|x| x / n).collect()
}

fn partition(i: usize, tenants: usize) -> (String, &'static str) {
    match i % 100 {
        0 => ("t0".into(), "src:small"),
        1..=5 => ("t0".into(), "src:mid"),
        _ => (format!("t{}", i % tenants), "ns:main"),
    }
}

fn emit(value: serde_json::Value) {
    println!("{value}");
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn time_path<F>(queries: &[Query], mut f: F) -> Result<(Vec<Vec<Hit>>, Vec<Duration>), String>
where
    F: FnMut(&Query) -> Result<Vec<Hit>, roster_index::IndexError>,
{
    // Warm-up pass over a few queries (page cache, allocator).
    for q in queries.iter().take(20) {
        f(q).map_err(|e| e.to_string())?;
    }
    let mut results = Vec::with_capacity(queries.len());
    let mut times = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        let hits = f(q).map_err(|e| e.to_string())?;
        times.push(t.elapsed());
        results.push(hits);
    }
    Ok((results, times))
}

fn report_latency(case: &str, path: &str, times: &mut [Duration]) {
    times.sort();
    let mean = times.iter().map(Duration::as_secs_f64).sum::<f64>() / times.len().max(1) as f64;
    emit(json!({
        "bench": "latency", "case": case, "path": path, "queries": times.len(),
        "p50_ms": round3(percentile(times, 0.5)), "p99_ms": round3(percentile(times, 0.99)),
        "mean_ms": round3(mean * 1e3),
    }));
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn overlap(a: &[Hit], b: &[Hit]) -> (usize, usize) {
    let want: HashSet<&str> = b.iter().map(|h| h.key.as_str()).collect();
    let got = a.iter().filter(|h| want.contains(h.key.as_str())).count();
    (got, want.len())
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Runs one partition case: latencies of hybrid / text / vector, and recalls.
fn run_case(
    index: &SearchIndex,
    case: &str,
    queries: &[Query],
    recall_n: usize,
    forced: &[VectorStrategy],
) -> Result<(), String> {
    let (hybrid, mut t) = time_path(queries, |q| index.search(q))?;
    report_latency(case, "hybrid", &mut t);
    let (_, mut t) = time_path(queries, |q| index.text_search(q))?;
    report_latency(case, "text", &mut t);
    let (ann, mut t) = time_path(queries, |q| index.vector_search(q))?;
    report_latency(case, "vector", &mut t);
    let mut forced_results = Vec::new();
    for &strategy in forced {
        let (r, mut t) = time_path(queries, |q| index.vector_search_with(q, strategy))?;
        report_latency(
            case,
            &format!("vector_forced_{strategy:?}").to_lowercase(),
            &mut t,
        );
        forced_results.push((strategy, r));
    }
    // Recall references: exact vectors at candidate depth, text at candidate depth.
    let sample = &queries[..recall_n.min(queries.len())];
    let mut vec_hit = (0, 0);
    let mut forced_hit = vec![(0, 0); forced_results.len()];
    let mut hyb_hit = (0, 0);
    let mut exact_times = Vec::with_capacity(sample.len());
    for (i, q) in sample.iter().enumerate() {
        let deep = Query {
            limit: q.candidates.max(q.limit),
            ..q.clone()
        };
        let t = Instant::now();
        let exact_deep = index
            .exact_vector_search(&deep)
            .map_err(|e| e.to_string())?;
        exact_times.push(t.elapsed());
        let text_deep = index.text_search(&deep).map_err(|e| e.to_string())?;
        let exact_top: Vec<Hit> = exact_deep.iter().take(q.limit).cloned().collect();
        let (g, w) = overlap(&ann[i], &exact_top);
        vec_hit = (vec_hit.0 + g, vec_hit.1 + w);
        for ((_, r), hit) in forced_results.iter().zip(forced_hit.iter_mut()) {
            let (g, w) = overlap(&r[i], &exact_top);
            *hit = (hit.0 + g, hit.1 + w);
        }
        let reference = fuse(&text_deep, &exact_deep, q.limit);
        let (g, w) = overlap(&hybrid[i], &reference);
        hyb_hit = (hyb_hit.0 + g, hyb_hit.1 + w);
    }
    report_latency(case, "vector_exact_at_candidates", &mut exact_times);
    let ratio = |(g, w): (usize, usize)| if w == 0 { 1.0 } else { g as f64 / w as f64 };
    emit(
        json!({"bench": "recall", "case": case, "path": "vector", "recall_at_10": round3(ratio(vec_hit)), "queries": sample.len()}),
    );
    for ((strategy, _), hit) in forced_results.iter().zip(&forced_hit) {
        emit(
            json!({"bench": "recall", "case": case, "path": format!("vector_forced_{strategy:?}").to_lowercase(), "recall_at_10": round3(ratio(*hit)), "queries": sample.len()}),
        );
    }
    emit(
        json!({"bench": "recall", "case": case, "path": "hybrid", "recall_at_10": round3(ratio(hyb_hit)), "queries": sample.len()}),
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("search_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let options = IndexOptions {
        quantization: args.quant,
        connectivity: args.connectivity,
        expansion_add: args.expansion_add,
        expansion_search: args.expansion_search,
        filtered_expansion_search: args.filtered_expansion_search,
        // Snapshots are measured explicitly below, not inside the build.
        persist_interval: Duration::from_secs(86_400),
        persist_max_pending: usize::MAX,
        writer_memory_bytes: 256 << 20,
        ..IndexOptions::default()
    };
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    // With --dir, an index already built there with the same record count and
    // batch size is reused (for sweeping search-time settings).
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().join("index"));
    let mut gen = Gen::new(42, args.dims, args.clusters, args.noise);
    emit(
        json!({"bench": "config", "records": args.records, "dims": args.dims, "queries": args.queries,
        "tenants": args.tenants, "quantization": args.quant.as_str(), "connectivity": args.connectivity,
        "expansion_add": args.expansion_add, "expansion_search": args.expansion_search, "filtered_expansion_search": args.filtered_expansion_search,
        "batch": args.batch, "noise": args.noise, "clusters": args.clusters,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)}),
    );

    let index = SearchIndex::open_with(&dir, Some(args.dims), options.clone())
        .map_err(|e| e.to_string())?;
    let mut apply_time = Duration::ZERO;
    let wall = Instant::now();
    let batches = args.records.div_ceil(args.batch) as u64;
    let reuse = args.dir.is_some()
        && index.watermark() == batches
        && index.stats().docs == args.records as u64;
    let mut i = if reuse { args.records } else { 0 };
    let mut watermark = 0;
    while i < args.records {
        let end = (i + args.batch).min(args.records);
        let changes: Vec<Change> = (i..end)
            .map(|n| {
                let cluster = gen.rng.gen_range(0..args.clusters);
                let len = gen.rng.gen_range(20..=80);
                let text = gen.text(cluster, len, 0.25);
                let vector = gen.near_centre(cluster);
                let (tenant, scope) = partition(n, args.tenants);
                Change::Upsert(Doc {
                    key: format!("r:{n:09}"),
                    tenant,
                    scope: scope.into(),
                    text,
                    vector: Some(vector),
                })
            })
            .collect();
        watermark += 1;
        let t = Instant::now();
        index.apply(changes, watermark).map_err(|e| e.to_string())?;
        apply_time += t.elapsed();
        i = end;
        if watermark % 10 == 0 {
            eprintln!(
                "  built {i}/{} in {:.1}s",
                args.records,
                apply_time.as_secs_f64()
            );
        }
    }
    emit(
        json!({"bench": "build", "reused": reuse, "records": args.records, "apply_secs": round3(apply_time.as_secs_f64()),
        "wall_secs_incl_datagen": round3(wall.elapsed().as_secs_f64()),
        "records_per_sec": (args.records as f64 / apply_time.as_secs_f64()).round()}),
    );
    let t = Instant::now();
    index.persist().map_err(|e| e.to_string())?;
    emit(json!({"bench": "persist", "secs": round3(t.elapsed().as_secs_f64())}));
    let index = if args.reopen {
        drop(index);
        let t = Instant::now();
        let index =
            SearchIndex::open_with(&dir, Some(args.dims), options).map_err(|e| e.to_string())?;
        emit(
            json!({"bench": "reopen", "secs": round3(t.elapsed().as_secs_f64()), "watermark": index.watermark()}),
        );
        index
    } else {
        index
    };
    let stats = index.stats();
    emit(
        json!({"bench": "memory", "vectors": stats.vectors, "docs": stats.docs,
        "vector_bytes": stats.ann_memory_bytes + stats.exact_store_bytes,
        "ann_bytes": stats.ann_memory_bytes, "exact_store_bytes": stats.exact_store_bytes,
        "process_rss_bytes": rss_bytes()}),
    );

    // Queries come from their own seed so a reused index sees the same ones.
    gen.rng = StdRng::seed_from_u64(7);
    let candidates = |limit: usize| args.candidates.unwrap_or(Query::default_candidates(limit));
    let make_queries =
        |gen: &mut Gen, tenant_of: &dyn Fn(&mut Gen) -> String, scopes: &[&str]| -> Vec<Query> {
            (0..args.queries)
                .map(|_| {
                    let cluster = gen.rng.gen_range(0..args.clusters);
                    let n = gen.rng.gen_range(3..=6);
                    let text = gen.text(cluster, n, 0.5);
                    Query {
                        tenant: tenant_of(gen),
                        scopes: scopes.iter().map(|s| s.to_string()).collect(),
                        text,
                        vector: Some(gen.near_centre(cluster)),
                        limit: 10,
                        candidates: candidates(10),
                    }
                })
                .collect()
        };
    let tenants = args.tenants;
    let all = make_queries(
        &mut gen,
        &|g: &mut Gen| format!("t{}", g.rng.gen_range(0..tenants)),
        &["ns:main", "src:small", "src:mid"],
    );
    run_case(
        &index,
        "all_scopes",
        &all,
        args.recall_queries,
        &[VectorStrategy::Ann],
    )?;
    let small = make_queries(&mut gen, &|_: &mut Gen| "t0".into(), &["src:small"]);
    run_case(
        &index,
        "partition_1pct",
        &small,
        args.recall_queries,
        &[VectorStrategy::Ann, VectorStrategy::Exact],
    )?;
    let mid = make_queries(&mut gen, &|_: &mut Gen| "t0".into(), &["src:mid"]);
    run_case(
        &index,
        "partition_5pct",
        &mid,
        args.recall_queries,
        &[VectorStrategy::Ann, VectorStrategy::Exact],
    )?;
    Ok(())
}
