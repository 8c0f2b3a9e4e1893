//! The results table and its JSON form.

use serde_json::{Value, json};

/// One measured figure, with the direct baseline where there is one.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: &'static str,
    pub measure: String,
    pub unit: &'static str,
    pub direct: Option<f64>,
    pub spool: f64,
    /// The goal this figure is held to, as text.
    pub target: Option<&'static str>,
}

impl Row {
    pub fn new(
        scenario: &'static str,
        measure: impl Into<String>,
        unit: &'static str,
        spool: f64,
    ) -> Self {
        Self {
            scenario,
            measure: measure.into(),
            unit,
            direct: None,
            spool,
            target: None,
        }
    }

    pub fn direct(mut self, direct: f64) -> Self {
        self.direct = Some(direct);
        self
    }

    pub fn target(mut self, target: &'static str) -> Self {
        self.target = Some(target);
        self
    }

    fn ratio(&self) -> Option<f64> {
        self.direct.filter(|d| *d > 0.0).map(|d| self.spool / d)
    }
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub fn print(rows: &[Row]) {
    println!(
        "{:<12} {:<46} {:>8} {:>12} {:>12} {:>7}  target",
        "scenario", "measure", "unit", "direct", "spool", "ratio"
    );
    for r in rows {
        println!(
            "{:<12} {:<46} {:>8} {:>12} {:>12} {:>7}  {}",
            r.scenario,
            r.measure,
            r.unit,
            r.direct.map(number).unwrap_or_default(),
            number(r.spool),
            r.ratio().map(|x| format!("{x:.2}")).unwrap_or_default(),
            r.target.unwrap_or(""),
        );
    }
}

pub fn to_json(rows: &[Row]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                json!({
                    "scenario": r.scenario, "measure": r.measure, "unit": r.unit,
                    "direct": r.direct, "spool": r.spool, "ratio": r.ratio(), "target": r.target,
                })
            })
            .collect(),
    )
}
