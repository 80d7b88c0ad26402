//! The scopes an API key may hold.

/// What an API key may do. The configuration names them; the HTTP layer checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Start onboardings and device validations, read their state.
    OnboardingWrite,
    /// Search and explain decisions.
    DecisionsRead,
    /// See personal data unmasked.
    PiiRead,
    /// Claim, release and resolve review cases (the key's name is the reviewer recorded).
    ReviewsWrite,
    /// Draft, shadow and publish policy versions.
    PoliciesWrite,
    /// Create lists, add and remove their entries.
    ListsWrite,
    /// Record the people's requests to know and to erase their data (the data-protection
    /// officer's); reading a request's report takes `pii:read` too.
    SubjectsWrite,
    /// Make, alter and withdraw fraud indications; import those other institutions shared.
    FraudWrite,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::OnboardingWrite,
        Scope::DecisionsRead,
        Scope::PiiRead,
        Scope::ReviewsWrite,
        Scope::PoliciesWrite,
        Scope::ListsWrite,
        Scope::SubjectsWrite,
        Scope::FraudWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::OnboardingWrite => "onboarding:write",
            Scope::DecisionsRead => "decisions:read",
            Scope::PiiRead => "pii:read",
            Scope::ReviewsWrite => "reviews:write",
            Scope::PoliciesWrite => "policies:write",
            Scope::ListsWrite => "lists:write",
            Scope::SubjectsWrite => "subjects:write",
            Scope::FraudWrite => "fraud:write",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}
