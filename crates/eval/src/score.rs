//! Confusion counts and the one-line score format scripts parse.

use std::fmt;

/// Binary confusion counts for one positive class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub tn: usize,
}

impl Counts {
    pub fn add(&mut self, gold: bool, predicted: bool) {
        match (gold, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }

    pub fn merge(&mut self, other: Counts) {
        self.tp += other.tp;
        self.fp += other.fp;
        self.fn_ += other.fn_;
        self.tn += other.tn;
    }

    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    pub fn f1(&self) -> f64 {
        f1(self.precision(), self.recall())
    }

    /// `tp=.. fp=.. fn=..`, for detail lines.
    pub fn summary(&self) -> String {
        format!("tp={} fp={} fn={}", self.tp, self.fp, self.fn_)
    }
}

/// `part / whole`, 0 when there is nothing to divide.
pub(crate) fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

pub(crate) fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

/// `<set> <metric> precision=<P> recall=<R> f1=<F> n=<N>[ <extra>]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreLine {
    pub set: &'static str,
    pub metric: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub n: usize,
    /// Appended after `n=` on detail lines (counts); empty on summary lines.
    pub extra: String,
}

impl ScoreLine {
    pub fn from_counts(
        set: &'static str,
        metric: impl Into<String>,
        counts: Counts,
        n: usize,
    ) -> Self {
        ScoreLine {
            set,
            metric: metric.into(),
            precision: counts.precision(),
            recall: counts.recall(),
            f1: counts.f1(),
            n,
            extra: String::new(),
        }
    }

    pub fn with_extra(mut self, extra: String) -> Self {
        self.extra = extra;
        self
    }
}

impl fmt::Display for ScoreLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} precision={:.3} recall={:.3} f1={:.3} n={}",
            self.set, self.metric, self.precision, self.recall, self.f1, self.n
        )?;
        if !self.extra.is_empty() {
            write!(f, " {}", self.extra)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_give_precision_recall_f1() {
        let mut counts = Counts::default();
        for (gold, predicted) in [
            (true, true),
            (true, true),
            (true, false),
            (false, true),
            (false, false),
        ] {
            counts.add(gold, predicted);
        }
        assert_eq!((counts.tp, counts.fp, counts.fn_, counts.tn), (2, 1, 1, 1));
        assert!((counts.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((counts.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((counts.f1() - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn empty_denominators_score_zero_not_nan() {
        let counts = Counts::default();
        assert_eq!(
            (counts.precision(), counts.recall(), counts.f1()),
            (0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn summary_line_has_exact_format() {
        let counts = Counts {
            tp: 97,
            fp: 3,
            fn_: 2,
            tn: 0,
        };
        let line = ScoreLine::from_counts("negex", "negation", counts, 1782);
        assert_eq!(
            line.to_string(),
            "negex negation precision=0.970 recall=0.980 f1=0.975 n=1782"
        );
        let detailed = line.with_extra(counts.summary());
        assert!(detailed.to_string().ends_with("n=1782 tp=97 fp=3 fn=2"));
    }
}
