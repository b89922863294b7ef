//! The report: a markdown table, the same figures as JSON, and a plot of latency against
//! concurrency, all under target/bench/.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use super::{LEVELS, Options, Results};

pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub database: &'static str,
    pub date: String,
}

impl Machine {
    pub fn read(database: &'static str) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown CPU".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: memory_kib / 1024.0 / 1024.0,
            database,
            date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        }
    }

    fn describe(&self) -> String {
        format!("{} cores ({}), {:.0} GiB, {}, {}", self.cores, self.cpu, self.memory_gib, self.database, self.date)
    }
}

/// One row of the table.
struct Figure {
    name: String,
    unit: &'static str,
    direct: Option<f64>,
    ours: Option<f64>,
    litellm: Option<f64>,
    /// The target ours must meet, in words, and whether it did.
    target: Option<(String, bool)>,
}

impl Figure {
    fn new(name: impl Into<String>, unit: &'static str) -> Self {
        Self { name: name.into(), unit, direct: None, ours: None, litellm: None, target: None }
    }

    /// ours / LiteLLM.
    fn ratio(&self) -> Option<f64> {
        match (self.ours, self.litellm) {
            (Some(ours), Some(litellm)) if litellm != 0.0 => Some(ours / litellm),
            _ => None,
        }
    }
}

/// The median over rounds of `minuend - subtrahend`, taken round by round.
fn added(results: &Results, minuend: &str, subtrahend: &str) -> Option<f64> {
    let (a, b) = (results.rounds.get(minuend)?, results.rounds.get(subtrahend)?);
    let mut differences: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
    differences.sort_by(f64::total_cmp);
    differences.get(differences.len() / 2).copied()
}

/// The figures of the table, with the targets of docs/performance.md for the database the run used.
fn figures(results: &Results, postgres: bool) -> Vec<Figure> {
    let mut figures = Vec::new();
    let (p50, p99, p999) = if postgres { (Some(600.0), None, None) } else { (Some(200.0), Some(1000.0), Some(3000.0)) };
    let litellm_added = |metric: &str, surface: &str| {
        added(results, &format!("{surface}.litellm.{metric}"), &format!("{surface}.direct.{metric}"))
    };
    for (surface, label) in [("chat", "/v1/chat/completions"), ("run", "native sync run")] {
        for (metric, name, limit) in [("p50_us", "p50", p50), ("p99_us", "p99", p99), ("p999_us", "p99.9", p999)] {
            let mut figure = Figure::new(format!("added latency {name}, {label}, c=1"), "µs");
            figure.direct = results.median(&format!("latency.chat.direct.{metric}"));
            figure.ours =
                added(results, &format!("latency.{surface}.ours.{metric}"), &format!("latency.chat.direct.{metric}"));
            figure.litellm = litellm_added(metric, "latency.chat");
            figure.target = limit.zip(figure.ours).map(|(limit, ours)| (format!("< {limit} µs"), ours < limit));
            figures.push(figure);
        }
    }
    for (metric, name) in [("p50_us", "p50"), ("p99_us", "p99")] {
        let mut figure =
            Figure::new(format!("memory's cost per run {name} (a block, 30 memories), native sync run"), "µs");
        figure.ours =
            added(results, &format!("latency.run_memory.ours.{metric}"), &format!("latency.run.ours.{metric}"));
        figures.push(figure);
    }
    for (surface, label) in [("chat", "chat stream"), ("run", "native run stream")] {
        for (metric, name) in [("p50_us", "p50"), ("p99_us", "p99")] {
            let mut figure = Figure::new(format!("added TTFT {name}, {label}"), "µs");
            figure.direct = results.median(&format!("ttft.chat.direct.{metric}"));
            figure.ours =
                added(results, &format!("ttft.{surface}.ours.{metric}"), &format!("ttft.chat.direct.{metric}"));
            figure.litellm = litellm_added(metric, "ttft.chat");
            if name == "p50" && !postgres {
                figure.target = figure.ours.map(|ours| ("< 300 µs".into(), ours < 300.0));
            }
            figures.push(figure);
        }
    }
    for level in LEVELS {
        let mut figure = Figure::new(format!("throughput, c={level}, 20 ms mock"), "req/s");
        figure.direct = results.median(&format!("throughput.direct.c{level}.rps"));
        figure.ours = results.median(&format!("throughput.ours.c{level}.rps"));
        figure.litellm = results.median(&format!("throughput.litellm.c{level}.rps"));
        if level == 256 && !postgres {
            figure.target = figure.ours.map(|ours| ("≥ 4000 req/s".into(), ours >= 4000.0));
        }
        figures.push(figure);
        let mut figure = Figure::new(format!("p99 latency, c={level}, 20 ms mock"), "ms");
        let p99 = |target: &str| results.median(&format!("throughput.{target}.c{level}.p99_us")).map(|us| us / 1000.0);
        (figure.direct, figure.ours, figure.litellm) = (p99("direct"), p99("ours"), p99("litellm"));
        figures.push(figure);
    }
    let mut figure = Figure::new("highest tested concurrency with p99 < 50 ms", "conns");
    let highest = |target: &str| {
        LEVELS
            .iter()
            .rev()
            .find(|level| {
                results.median(&format!("throughput.{target}.c{level}.p99_us")).is_some_and(|p99| p99 < 50_000.0)
            })
            .map(|level| *level as f64)
    };
    (figure.direct, figure.ours, figure.litellm) = (highest("direct"), highest("ours"), highest("litellm"));
    if !postgres {
        figure.target = figure.ours.map(|ours| ("= 256 (every level)".into(), ours >= 256.0));
    }
    figures.push(figure);
    let single = |key: &str| results.single.get(key).copied();
    let mut figure = Figure::new("RSS idle", "MiB");
    figure.ours = single("rss_idle_bytes.ours").map(|bytes| bytes / 1048576.0);
    figure.litellm = single("rss_idle_bytes.litellm").map(|bytes| bytes / 1048576.0);
    figures.push(figure);
    let mut figure = Figure::new("RSS per open stream (1,000 held)", "KB");
    figure.ours = single("rss_per_stream_bytes.ours").map(|bytes| bytes / 1000.0);
    figure.litellm = single("rss_per_stream_bytes.litellm").map(|bytes| bytes / 1000.0);
    figure.target = figure.ours.map(|ours| ("< 30 KB".into(), ours < 30.0));
    figures.push(figure);
    let mut figure = Figure::new("CPU per 1,000 requests", "CPU-s");
    figure.ours = single("cpu_s_per_1000.ours");
    figure.litellm = single("cpu_s_per_1000.litellm");
    figures.push(figure);
    if !postgres {
        let mut figure = Figure::new("database CPU per run (SQLite writer and checkpointer threads)", "µs");
        figure.ours = single("database_cpu_us_per_run.ours");
        figures.push(figure);
    }
    for (metric, name) in [("p50_us", "p50"), ("p99_us", "p99")] {
        let Some(lag) = results.median(&format!("replicas.lag.{metric}")) else { continue };
        let mut figure = Figure::new(format!("event reaching a stream on another replica, {name}"), "ms");
        figure.ours = Some(lag / 1000.0);
        if name == "p99" {
            figure.target = Some(("< 10 ms".into(), lag < 10_000.0));
        }
        figures.push(figure);
    }
    let mut figure = Figure::new("completed runs in the database / successful requests", "rows");
    figure.ours = single("rows.completed_runs").zip(single("rows.successful_requests")).map(|(rows, ok)| rows / ok);
    figure.target = figure.ours.map(|ratio| ("= 1 (nothing lost)".into(), ratio == 1.0));
    figures.push(figure);
    figures
}

fn cell(value: Option<f64>) -> String {
    match value {
        None => "–".into(),
        Some(value) if value.abs() >= 100.0 => format!("{value:.0}"),
        Some(value) if value.abs() >= 1.0 => format!("{value:.1}"),
        Some(value) => format!("{value:.3}"),
    }
}

pub fn write(out: &Path, machine: &Machine, options: &Options, results: &Results) -> anyhow::Result<()> {
    let figures = figures(results, options.postgres.is_some());
    let mut markdown = format!(
        "# Ingram benchmark\n\n{}; {} rounds, medians; LiteLLM {}.\n\n| figure | unit | direct | ours | LiteLLM | ours/LiteLLM | target |\n| --- | --- | --- | --- | --- | --- | --- |\n",
        machine.describe(),
        options.rounds,
        if options.vs_litellm { "1.74.9, one worker" } else { "not run (--vs-litellm)" },
    );
    for figure in &figures {
        let target = figure
            .target
            .as_ref()
            .map_or(String::new(), |(text, met)| format!("{text} {}", if *met { "✓" } else { "✗" }));
        let ratio = figure.ratio().map_or("–".into(), |ratio| format!("{ratio:.3}"));
        let _ = writeln!(
            markdown,
            "| {} | {} | {} | {} | {} | {ratio} | {target} |",
            figure.name,
            figure.unit,
            cell(figure.direct),
            cell(figure.ours),
            cell(figure.litellm)
        );
    }
    if let Some(times) = added(results, "latency.chat.litellm.p50_us", "latency.chat.direct.p50_us")
        .zip(added(results, "latency.chat.ours.p50_us", "latency.chat.direct.p50_us"))
        .map(|(litellm, ours)| litellm / ours)
    {
        let _ = writeln!(
            markdown,
            "\nLiteLLM adds {times:.0}× the p50 latency ours adds on /v1/chat/completions (target: at least 50×)."
        );
    }
    let json = json!({
        "machine": {"cpu": machine.cpu, "cores": machine.cores, "memory_gib": machine.memory_gib, "database": machine.database, "date": machine.date},
        "rounds": options.rounds,
        "vs_litellm": options.vs_litellm,
        "figures": figures.iter().map(|figure| json!({
            "name": figure.name, "unit": figure.unit, "direct": figure.direct, "ours": figure.ours,
            "litellm": figure.litellm, "ratio": figure.ratio(),
            "target": figure.target.as_ref().map(|(text, met)| json!({"text": text, "met": met})),
        })).collect::<Vec<_>>(),
        "per_round": results.rounds,
        "single": results.single,
    });
    std::fs::write(out.join("report.md"), &markdown)?;
    std::fs::write(out.join("report.json"), serde_json::to_string_pretty(&json)?)?;
    std::fs::write(out.join("latency.svg"), plot(results))?;
    println!("{markdown}");
    eprintln!("wrote {0}/report.md, {0}/report.json and {0}/latency.svg", out.display());
    Ok(())
}

/// One curve: concurrency, p50 and p99 in ms.
type Points = Vec<(usize, f64, f64)>;

/// p50 (solid) and p99 (dashed) latency against concurrency, log scale on both axes.
fn plot(results: &Results) -> String {
    let (width, height, left, bottom, top, right) = (760.0, 440.0, 70.0, 50.0, 40.0, 150.0);
    let series: Vec<(&str, &str, Points)> = [("direct", "#888888"), ("ours", "#1f77b4"), ("litellm", "#d62728")]
        .into_iter()
        .map(|(target, color)| {
            let points = LEVELS
                .iter()
                .filter_map(|level| {
                    let p50 = results.median(&format!("throughput.{target}.c{level}.p50_us"))?;
                    let p99 = results.median(&format!("throughput.{target}.c{level}.p99_us"))?;
                    Some((*level, p50 / 1000.0, p99 / 1000.0))
                })
                .collect();
            (target, color, points)
        })
        .filter(|(_, _, points): &(_, _, Vec<_>)| !points.is_empty())
        .collect();
    let max_ms = series.iter().flat_map(|(_, _, points)| points.iter().map(|p| p.2)).fold(20.0_f64, f64::max);
    let (y_min, y_max) = (10.0_f64.log10(), (max_ms * 1.2).log10());
    let x =
        |level: usize| left + (level as f64).log2() / (*LEVELS.last().unwrap() as f64).log2() * (width - left - right);
    let y = |ms: f64| height - bottom - (ms.max(10.0).log10() - y_min) / (y_max - y_min) * (height - bottom - top);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"24\" font-size=\"15\">Latency against concurrency (20 ms mock upstream): p50 solid, p99 dashed</text>\n"
    );
    for level in LEVELS {
        let _ = writeln!(
            svg,
            "<line x1=\"{0}\" x2=\"{0}\" y1=\"{top}\" y2=\"{1}\" stroke=\"#eee\"/><text x=\"{0}\" y=\"{2}\" text-anchor=\"middle\">{level}</text>",
            x(level),
            height - bottom,
            height - bottom + 18.0
        );
    }
    let mut tick = 10.0;
    while tick <= max_ms * 1.2 {
        let _ = writeln!(
            svg,
            "<line x1=\"{left}\" x2=\"{0}\" y1=\"{1}\" y2=\"{1}\" stroke=\"#eee\"/><text x=\"{2}\" y=\"{3}\" text-anchor=\"end\">{tick} ms</text>",
            width - right,
            y(tick),
            left - 6.0,
            y(tick) + 4.0
        );
        tick *= if tick.log10().fract() < 0.1 {
            2.0
        } else if tick.log10().fract() < 0.4 {
            2.5
        } else {
            2.0
        };
    }
    let _ = writeln!(
        svg,
        "<text x=\"{0}\" y=\"{1}\" text-anchor=\"middle\">concurrent connections</text>",
        (left + width - right) / 2.0,
        height - 12.0
    );
    for (index, (target, color, points)) in series.iter().enumerate() {
        for (dash, pick) in [("", 1usize), (" stroke-dasharray=\"6 4\"", 2)] {
            let path: Vec<String> =
                points.iter().map(|p| format!("{:.1},{:.1}", x(p.0), y(if pick == 1 { p.1 } else { p.2 }))).collect();
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
                path.join(" ")
            );
        }
        let label_y = top + 20.0 + index as f64 * 20.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{0}\" x2=\"{1}\" y1=\"{label_y}\" y2=\"{label_y}\" stroke=\"{color}\" stroke-width=\"3\"/><text x=\"{2}\" y=\"{3}\">{target}</text>",
            width - right + 15.0,
            width - right + 40.0,
            width - right + 46.0,
            label_y + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}
