//! The sandbox's test people: one CPF per answer unico documents, so every branch of the
//! client and of the policy can be reached without real biometrics. The README and the tests
//! read this table; keep it the single place where a scenario is described.

use std::time::Duration;

const YES: &str = "yes";
const NO: &str = "no";
const INCONCLUSIVE: &str = "inconclusive";

/// One process body as unico would send it; `None` fields are left out of the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub status: u8,
    /// `unicoId.result`: yes, no or inconclusive.
    pub unico_id: Option<&'static str>,
    /// 1 live, 2 not live.
    pub liveness: Option<u8>,
    /// `identityFraudsters.result`: yes, inconclusive (or SUSPICIOUS, seen on one page).
    pub identity_fraudsters: Option<&'static str>,
    pub score: Option<i32>,
}

impl Outcome {
    const fn status(status: u8) -> Self {
        Outcome {
            status,
            unico_id: None,
            liveness: None,
            identity_fraudsters: None,
            score: None,
        }
    }

    const fn uid(self, result: &'static str) -> Self {
        Outcome {
            unico_id: Some(result),
            ..self
        }
    }

    const fn live(self, liveness: u8) -> Self {
        Outcome {
            liveness: Some(liveness),
            ..self
        }
    }

    const fn fraud(self, result: &'static str) -> Self {
        Outcome {
            identity_fraudsters: Some(result),
            ..self
        }
    }

    const fn risk(self, score: i32) -> Self {
        Outcome {
            score: Some(score),
            ..self
        }
    }
}

/// How a scenario unfolds over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// CreateProcess already answers the result, and GetProcess repeats it.
    Sync(Outcome),
    /// CreateProcess answers `at_create`; once the processing delay has passed, GetProcess
    /// answers `later`. With `webhook`, the sandbox announces the end of processing.
    Async {
        at_create: Outcome,
        later: Outcome,
        webhook: bool,
    },
    /// CreateProcess refuses the selfie with this business error (HTTP 400).
    RefusesImage { code: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    pub number: u8,
    /// Punctuated, as people type it; unico receives the bare digits.
    pub cpf: &'static str,
    pub name: &'static str,
    pub behaviour: Behaviour,
}

impl Scenario {
    pub fn is_async(&self) -> bool {
        matches!(self.behaviour, Behaviour::Async { .. })
    }

    pub fn sends_webhook(&self) -> bool {
        matches!(self.behaviour, Behaviour::Async { webhook: true, .. })
    }

    /// The CPF as `subject.code` carries it.
    pub fn digits(&self) -> String {
        self.cpf.chars().filter(char::is_ascii_digit).collect()
    }

    /// What CreateProcess answers, or the refusal code.
    pub fn at_create(&self) -> Result<Outcome, &'static str> {
        match self.behaviour {
            Behaviour::Sync(outcome) => Ok(outcome),
            Behaviour::Async { at_create, .. } => Ok(at_create),
            Behaviour::RefusesImage { code } => Err(code),
        }
    }

    /// What GetProcess answers `elapsed` after creation, given the configured delay.
    /// `None` only for scenarios that never create a process.
    pub fn outcome_after(&self, elapsed: Duration, processing_delay: Duration) -> Option<Outcome> {
        match self.behaviour {
            Behaviour::Sync(outcome) => Some(outcome),
            Behaviour::Async {
                at_create, later, ..
            } => Some(if elapsed >= processing_delay {
                later
            } else {
                at_create
            }),
            Behaviour::RefusesImage { .. } => None,
        }
    }
}

const fn sync(number: u8, cpf: &'static str, name: &'static str, outcome: Outcome) -> Scenario {
    Scenario {
        number,
        cpf,
        name,
        behaviour: Behaviour::Sync(outcome),
    }
}

const fn later(
    number: u8,
    cpf: &'static str,
    name: &'static str,
    at_create: Outcome,
    later: Outcome,
) -> Scenario {
    Scenario {
        number,
        cpf,
        name,
        behaviour: Behaviour::Async {
            at_create,
            later,
            webhook: true,
        },
    }
}

const fn silent(scenario: Scenario) -> Scenario {
    match scenario.behaviour {
        Behaviour::Async {
            at_create, later, ..
        } => Scenario {
            behaviour: Behaviour::Async {
                at_create,
                later,
                webhook: false,
            },
            ..scenario
        },
        _ => scenario,
    }
}

const S1: Outcome = Outcome::status(1);
const S3: Outcome = Outcome::status(3);

pub const SCENARIOS: &[Scenario] = &[
    sync(1, "900.000.001-75", "identity confirmed", S3.uid(YES)),
    sync(2, "900.000.002-56", "liveness only: live", S3.live(1)),
    sync(3, "900.000.003-37", "liveness only: not live", S3.live(2)),
    sync(
        4,
        "900.000.004-18",
        "inconclusive, not live",
        S3.uid(INCONCLUSIVE).live(2),
    ),
    sync(
        5,
        "900.000.005-07",
        "inconclusive, score dropped",
        S3.uid(INCONCLUSIVE).live(1),
    ),
    sync(6, "900.000.006-80", "not the holder", S3.uid(NO).live(1)),
    later(
        7,
        "900.000.007-60",
        "risk score 50",
        S1.uid(INCONCLUSIVE).live(1),
        S3.uid(INCONCLUSIVE).live(1).risk(50),
    ),
    later(
        8,
        "900.000.008-41",
        "confirmed, no fraud record",
        S1.uid(YES),
        S3.uid(YES).fraud(INCONCLUSIVE),
    ),
    later(
        9,
        "900.000.009-22",
        "confirmed, known fraudster",
        S1.uid(YES),
        S3.uid(YES).fraud(YES),
    ),
    later(
        10,
        "900.000.010-66",
        "inconclusive, no fraud record, score dropped",
        S1.uid(INCONCLUSIVE).live(1),
        S3.uid(INCONCLUSIVE).live(1).fraud(INCONCLUSIVE),
    ),
    later(
        11,
        "900.000.011-47",
        "confirmed on review, known fraudster",
        S1.uid(INCONCLUSIVE).live(1),
        S3.uid(YES).live(1).fraud(YES),
    ),
    later(
        12,
        "900.000.012-28",
        "not the holder, no fraud record",
        S1.uid(NO).live(1),
        S3.uid(NO).live(1).fraud(INCONCLUSIVE),
    ),
    later(
        13,
        "900.000.013-09",
        "not the holder, known fraudster",
        S1.uid(NO).live(1),
        S3.uid(NO).live(1).fraud(YES),
    ),
    later(
        14,
        "900.000.014-90",
        "inconclusive, known fraudster, score dropped",
        S1.uid(INCONCLUSIVE).live(1),
        S3.uid(INCONCLUSIVE).live(1).fraud(YES),
    ),
    later(
        15,
        "900.000.015-70",
        "inconclusive, no fraud record, score 50",
        S1.uid(INCONCLUSIVE).live(1),
        S3.uid(INCONCLUSIVE).live(1).fraud(INCONCLUSIVE).risk(50),
    ),
    later(
        16,
        "900.000.016-51",
        "confirmed, fraud SUSPICIOUS",
        S1.uid(YES),
        S3.uid(YES).fraud("SUSPICIOUS"),
    ),
    later(
        17,
        "900.000.017-32",
        "risk score 0: new capture",
        S1.uid(INCONCLUSIVE).live(1),
        S3.uid(INCONCLUSIVE).live(1).risk(0),
    ),
    later(
        18,
        "900.000.018-13",
        "risk score -50",
        S1.uid(INCONCLUSIVE).live(1),
        S3.uid(INCONCLUSIVE).live(1).risk(-50),
    ),
    later(
        19,
        "900.000.019-02",
        "risk score 20",
        S1.uid(INCONCLUSIVE).live(1),
        S3.uid(INCONCLUSIVE).live(1).risk(20),
    ),
    later(
        20,
        "900.000.020-38",
        "error while processing",
        S1,
        Outcome::status(5),
    ),
    later(21, "900.000.021-19", "cancelled", S1, Outcome::status(4)),
    silent(later(
        22,
        "900.000.022-08",
        "divergence, never finishes",
        S1,
        Outcome::status(2),
    )),
    sync(
        23,
        "900.000.023-80",
        "error at creation",
        Outcome::status(5),
    ),
    Scenario {
        number: 24,
        cpf: "900.000.024-61",
        name: "selfie refused",
        behaviour: Behaviour::RefusesImage { code: "20505" },
    },
    silent(later(
        25,
        "900.000.025-42",
        "confirmed, webhook lost",
        S1.uid(YES),
        S3.uid(YES).fraud(INCONCLUSIVE),
    )),
];

/// The scenario of the table for a `subject.code`; None for any other CPF (which plays
/// `SandboxConfig::unlisted`, the plain happy path unless configured).
pub fn for_code(code: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.digits() == code)
}

pub fn by_number(number: u8) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.number == number)
}

/// unico checks the CPF before anything else; the sandbox has its own reading of the rule
/// rather than borrowing the service's, so a mistake in either shows up.
pub fn valid_cpf(code: &str) -> bool {
    let digits: Vec<u32> = code.chars().filter_map(|c| c.to_digit(10)).collect();
    if code.len() != 11 || digits.len() != 11 || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    let check = |len: usize| {
        let sum: u32 = digits[..len]
            .iter()
            .zip((2..=len as u32 + 1).rev())
            .map(|(d, w)| d * w)
            .sum();
        match sum % 11 {
            0 | 1 => 0,
            r => 11 - r,
        }
    };
    check(9) == digits[9] && check(10) == digits[10]
}
