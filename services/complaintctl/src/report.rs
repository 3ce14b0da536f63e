//! `complaintctl report`: regulatory returns and complaint analysis for a period, as CSV
//! or JSON, each with where its figures came from (log position, digest, rules, mapping).

use std::path::Path;

use anyhow::Context;
use complaints_proto::complaints::reports::v1 as pb;

use crate::cli::{ReportArgs, ReportFormat};
use crate::connect::Target;

pub async fn run(target: &Target, args: ReportArgs) -> anyhow::Result<()> {
    let mut client = target.reports().await?;
    let report = client
        .get_report(target.request(pb::GetReportRequest {
            kind: args.kind.clone(),
            period: args.period.clone(),
            time_zone: args.time_zone.clone().unwrap_or_default(),
            by: args.by.clone().unwrap_or_default(),
            repeat_count: args.repeat_count.unwrap_or(0),
            repeat_days: args.repeat_days.unwrap_or(0),
            content: match args.format {
                ReportFormat::Csv => pb::Content::Csv,
                ReportFormat::Json => pb::Content::Json,
            } as i32,
        })?)
        .await?
        .into_inner();
    let p = report.provenance.clone().unwrap_or_default();
    match &args.out {
        Some(dir) => write_files(dir, &report, &p, args.format, args.plain),
        None => {
            match args.format {
                ReportFormat::Json => out!("{}", report.json),
                ReportFormat::Csv => {
                    // The provenance once, then each table under its name.
                    for (i, section) in all_sections(&report).enumerate() {
                        let lines = section.csv.lines();
                        if i == 0 {
                            for line in section.csv.lines().take_while(|l| l.starts_with('#')) {
                                out!("{line}");
                            }
                        }
                        out!();
                        out!("# section: {}", section.name);
                        for line in lines.skip_while(|l| l.starts_with('#')) {
                            out!("{line}");
                        }
                    }
                }
            }
            summary(&report, &p);
            Ok(())
        }
    }
}

fn all_sections(report: &pb::Report) -> impl Iterator<Item = &pb::Section> {
    report.sections.iter().chain(report.late_entries.iter())
}

/// What the figures stand on, on standard error (standard output holds the report).
fn summary(report: &pb::Report, p: &pb::Provenance) {
    let late = report.late_entries.as_ref().map_or(0, |s| s.rows.len());
    eprintln!(
        "{} {} ({}..{} {}): as of log position {} (head {}), {} late entr{}, rules {}, mapping {} {}{}",
        p.kind,
        p.period,
        p.first_day,
        p.last_day,
        p.time_zone,
        p.as_of_position,
        p.log_head,
        late,
        if late == 1 { "y" } else { "ies" },
        p.rules,
        p.mapping_source,
        p.mapping_hash,
        if p.period_ended {
            ""
        } else {
            "; the period has not ended: the figures are provisional"
        }
    );
}

/// One file per section (CSV) or one JSON file, plus the digest of the log position the
/// figures come from, in `dir`.
fn write_files(
    dir: &Path,
    report: &pb::Report,
    p: &pb::Provenance,
    format: ReportFormat,
    plain: bool,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stem = format!("{}-{}", p.kind, p.period.replace("..", "_"));
    let mut written = Vec::new();
    let mut write = |name: String, text: &str| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    match format {
        ReportFormat::Json => write(format!("{stem}.json"), &report.json)?,
        ReportFormat::Csv => {
            for section in all_sections(report) {
                let csv = if plain {
                    // For upload: the table alone; the provenance goes in its own file.
                    let mut table: String = section
                        .csv
                        .lines()
                        .skip_while(|l| l.starts_with('#'))
                        .collect::<Vec<_>>()
                        .join("\n");
                    table.push('\n');
                    table
                } else {
                    section.csv.clone()
                };
                write(format!("{stem}-{}.csv", section.name), &csv)?;
            }
            if plain {
                let provenance: String = all_sections(report)
                    .next()
                    .map(|s| {
                        s.csv
                            .lines()
                            .take_while(|l| l.starts_with('#'))
                            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
                            .collect()
                    })
                    .unwrap_or_default();
                write(format!("{stem}-provenance.txt"), &provenance)?;
            }
        }
    }
    write(format!("{stem}-digest.json"), &p.digest_json)?;
    for path in &written {
        out!("{}", path.display());
    }
    summary(report, p);
    Ok(())
}
