//! The risk-memory figures: what the rules of the versions in force ask, as the arguments of
//! the database function `risk_memory_figures` (migration 0021), and its answer as evidence.
//! The statement that stores an onboarding calls it (`onboardings::insert`); replay and shadow
//! call it for an onboarding already stored (`links::figures_as_of`).

use serde::Serialize;
use serde_json::Value;

use crate::domain::LinkKey;
use crate::domain::evidence::{
    LinkedFigure, ListFigure, MemoryEvidence, SharedFigure, VelocityFigure,
};
use crate::policy::memory::Questions;
use crate::store::StoreError;

/// Linked onboardings a decision's figures name at most, per rule.
pub(crate) const LINKED_AT_MOST: i64 = 20;

/// The questions of the risk-memory rules as the arguments of the database function
/// `risk_memory_figures` (migration 0021), which computes the figures in one query: list entries
/// live at the time judged; onboardings sharing a value stored before this one and created
/// within the window before it; for linked fraud, their latest decision at that time.
pub struct FigureArgs {
    pub(crate) lists: Vec<String>,
    pub(crate) velocity_keys: Vec<&'static str>,
    pub(crate) velocity_distinct: Vec<Option<&'static str>>,
    pub(crate) velocity_windows: Vec<i64>,
    pub(crate) linked_keys: Vec<String>,
    pub(crate) linked_windows: Vec<i64>,
    pub(crate) shared_windows: Vec<i64>,
}

impl FigureArgs {
    pub fn of(questions: &Questions) -> FigureArgs {
        let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
        FigureArgs {
            lists: questions.lists.clone(),
            velocity_keys: questions
                .velocity
                .iter()
                .map(|(k, _, _)| k.as_str())
                .collect(),
            velocity_distinct: questions
                .velocity
                .iter()
                .map(|(_, d, _)| d.map(LinkKey::as_str))
                .collect(),
            velocity_windows: questions
                .velocity
                .iter()
                .map(|(_, _, w)| secs(*w))
                .collect(),
            linked_keys: questions
                .linked
                .iter()
                .map(|(keys, _)| {
                    keys.iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect(),
            linked_windows: questions.linked.iter().map(|(_, w)| secs(*w)).collect(),
            shared_windows: questions.shared.iter().map(|w| secs(*w)).collect(),
        }
    }

    /// The call of `function` (`risk_memory_figures`, or `new_onboarding_figures` for an
    /// onboarding being stored), its first four arguments (onboarding, keys, hashes, then the
    /// time or the figures alone) as given and the rest as the nine placeholders from `$first`
    /// on, bound by `bind_figure_args!`.
    pub fn call(function: &str, first_four: [&str; 4], first: usize) -> String {
        let rest = (first..first + 9)
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let [onboarding, keys, hashes, fourth] = first_four;
        format!("{function}({onboarding}, {keys}, {hashes}, {fourth}, {rest})")
    }
}

/// The figures of an onboarding with values of `present` that shares none of them with any
/// onboarding stored before it and has no indication shared about its CPF, for `questions`,
/// without their time: what `new_onboarding_figures` answers, stamped, when its probes find
/// nothing (migration 0024). None when a list is asked about, since a list's key is read from
/// the database.
pub fn alone(questions: &Questions, present: &[LinkKey]) -> Option<Value> {
    #[derive(Serialize)]
    struct Alone {
        lists: Vec<ListFigure>,
        velocity: Vec<VelocityFigure>,
        linked: Vec<LinkedFigure>,
        shared: Vec<SharedFigure>,
    }
    if !questions.lists.is_empty() {
        return None;
    }
    let velocity = questions
        .velocity
        .iter()
        .map(|&(key, distinct, window_secs)| VelocityFigure {
            key,
            distinct,
            window_secs,
            // None without a value of `key`; else this onboarding alone: 1, or 0 without a
            // value of `distinct`.
            count: present
                .contains(&key)
                .then(|| u64::from(distinct.is_none_or(|d| present.contains(&d)))),
        })
        .collect();
    let linked = questions
        .linked
        .iter()
        .map(|(keys, window_secs)| LinkedFigure {
            keys: keys.clone(),
            window_secs: *window_secs,
            onboardings: Vec::new(),
        })
        .collect();
    let shared = questions
        .shared
        .iter()
        .map(|&window_secs| SharedFigure {
            window_secs,
            indications: Vec::new(),
        })
        .collect();
    serde_json::to_value(Alone {
        lists: Vec::new(),
        velocity,
        linked,
        shared,
    })
    .ok()
}

/// Binds a `FigureArgs`'s nine values, in the order `FigureArgs::call` numbers them.
macro_rules! bind_figure_args {
    ($query:expr, $args:expr) => {
        $query
            .bind(&$args.lists)
            .bind(&$args.velocity_keys)
            .bind(&$args.velocity_distinct)
            .bind(&$args.velocity_windows)
            .bind(&$args.linked_keys)
            .bind(&$args.linked_windows)
            .bind(&$args.shared_windows)
            .bind(crate::policy::memory::FRAUD_REASONS.as_slice())
            .bind(crate::store::figures::LINKED_AT_MOST)
    };
}
pub(crate) use bind_figure_args;

/// The figures a stored onboarding's memory column (or a replay) holds, as evidence.
pub fn parse(figures: Value) -> Result<MemoryEvidence, StoreError> {
    serde_json::from_value(figures)
        .map_err(|e| StoreError::Corrupt(format!("risk-memory figures: {e}")))
}
