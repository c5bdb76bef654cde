//! The results table (markdown), printed at the end and written to target/bench-results.md.

pub struct Row {
    pub what: String,
    pub result: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
}

#[derive(Default)]
pub struct Report {
    sections: Vec<(String, Vec<Row>)>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn section(&mut self, title: &str) {
        self.sections.push((title.to_string(), Vec::new()));
    }

    pub fn row(&mut self, what: &str, result: String, baseline: &str, ratio: String, target: &str) {
        eprintln!("  {what}: {result} {ratio}");
        let row = Row {
            what: what.into(),
            result,
            baseline: baseline.into(),
            ratio,
            target: target.into(),
        };
        match self.sections.last_mut() {
            Some((_, rows)) => rows.push(row),
            None => self.sections.push((String::new(), vec![row])),
        }
    }

    /// A row whose measurement could not be taken.
    pub fn na(&mut self, what: &str, reason: &str, target: &str) {
        self.row(what, format!("n/a ({reason})"), "", String::new(), target);
    }

    pub fn markdown(&self, header: &str) -> String {
        let mut s = String::new();
        s.push_str(header);
        s.push_str("\n\n| Measurement | Result | Baseline | Ratio / derived | Target |\n");
        s.push_str("|---|---|---|---|---|\n");
        for (title, rows) in &self.sections {
            if !title.is_empty() {
                s.push_str(&format!("| **{title}** | | | | |\n"));
            }
            for r in rows {
                s.push_str(&format!(
                    "| {} | {} | {} | {} | {} |\n",
                    esc(&r.what),
                    esc(&r.result),
                    esc(&r.baseline),
                    esc(&r.ratio),
                    esc(&r.target)
                ));
            }
        }
        if !self.notes.is_empty() {
            s.push('\n');
            for n in &self.notes {
                s.push_str(&format!("* {n}\n"));
            }
        }
        s
    }
}

fn esc(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
