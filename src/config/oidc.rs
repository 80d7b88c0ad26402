//! The console's sign-in: `[console]`, and `[console.oidc]` for the bank's identity provider
//! (OpenID Connect, authorization code with PKCE). Without `console.oidc` the console signs in
//! with API keys only.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{ConfigError, Scope, invalid};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    #[serde(default)]
    pub oidc: Option<OidcSettings>,
    /// Whether the sign-in page also takes an API key. Unset: yes without `console.oidc` or with
    /// the sandbox on; no otherwise, so that in production each reviewer is a person.
    #[serde(default)]
    pub key_sign_in: Option<bool>,
}

impl ConsoleSettings {
    pub fn key_sign_in(&self, sandbox: bool) -> bool {
        self.key_sign_in.unwrap_or(self.oidc.is_none() || sandbox)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match &self.oidc {
            Some(oidc) => oidc.validate(),
            None if self.key_sign_in == Some(false) => Err(invalid(
                "console.key_sign_in",
                "may be false only with console.oidc configured: nobody could sign in",
            )),
            None => Ok(()),
        }
    }
}

/// The console's client at the identity provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The provider's issuer identifier, exactly as its ID tokens' `iss`; its discovery document
    /// is at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// What the sign-in button says: "Sign in with <name>". Default: the issuer's host.
    #[serde(default)]
    pub name: Option<String>,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The console's callback as registered at the provider:
    /// `https://<veredito's host>/console/oidc/callback`.
    pub redirect_url: String,
    /// The scopes asked for; `openid` among them.
    #[serde(default = "default_scopes", deserialize_with = "words")]
    pub scopes: Vec<String>,
    /// The ID token's claim that holds the person's role names: a list of names or one
    /// space-separated string. A dotted path reaches into objects (`realm_access.roles`).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Which of the provider's role names give which of veredito's roles.
    pub roles: RoleNames,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into()]
}

fn default_roles_claim() -> String {
    "roles".into()
}

/// The provider's role names for each of veredito's roles (a list, or one space-separated
/// string). A person's scopes are those of every role they hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleNames {
    #[serde(default, deserialize_with = "words")]
    pub reviewer: Vec<String>,
    #[serde(default, deserialize_with = "words")]
    pub auditor: Vec<String>,
    #[serde(default, deserialize_with = "words")]
    pub risk: Vec<String>,
    #[serde(default, deserialize_with = "words")]
    pub compliance: Vec<String>,
    #[serde(default, deserialize_with = "words")]
    pub privacy: Vec<String>,
    #[serde(default, deserialize_with = "words")]
    pub pii: Vec<String>,
}

/// veredito's console roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Works the review queue: claims, releases and resolves cases.
    Reviewer,
    /// Reads decisions, cases, policies, lists and fraud indications.
    Auditor,
    /// The risk team: policies and lists.
    Risk,
    /// The compliance team: fraud indications.
    Compliance,
    /// The data-protection officer: the people's requests.
    Privacy,
    /// Sees personal data whole (with any of the others).
    Pii,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Reviewer,
        Role::Auditor,
        Role::Risk,
        Role::Compliance,
        Role::Privacy,
        Role::Pii,
    ];

    /// The API scopes the role gives, as the sandbox's keys of the same people carry them.
    pub fn scopes(self) -> &'static [Scope] {
        match self {
            Role::Reviewer => &[Scope::ReviewsWrite, Scope::DecisionsRead],
            Role::Auditor => &[Scope::DecisionsRead],
            Role::Risk => &[
                Scope::PoliciesWrite,
                Scope::ListsWrite,
                Scope::DecisionsRead,
            ],
            Role::Compliance => &[Scope::FraudWrite, Scope::DecisionsRead],
            Role::Privacy => &[Scope::SubjectsWrite],
            Role::Pii => &[Scope::PiiRead],
        }
    }
}

impl RoleNames {
    fn names(&self, role: Role) -> &[String] {
        match role {
            Role::Reviewer => &self.reviewer,
            Role::Auditor => &self.auditor,
            Role::Risk => &self.risk,
            Role::Compliance => &self.compliance,
            Role::Privacy => &self.privacy,
            Role::Pii => &self.pii,
        }
    }

    /// The roles a person holding the provider's role names `held` has.
    pub fn roles_of(&self, held: &[String]) -> Vec<Role> {
        Role::ALL
            .into_iter()
            .filter(|role| self.names(*role).iter().any(|name| held.contains(name)))
            .collect()
    }

    /// The scopes of those roles, each once.
    pub fn scopes_of(&self, held: &[String]) -> Vec<Scope> {
        let mut scopes = Vec::new();
        for role in self.roles_of(held) {
            for scope in role.scopes() {
                if !scopes.contains(scope) {
                    scopes.push(*scope);
                }
            }
        }
        scopes
    }
}

impl OidcSettings {
    /// What the sign-in button names.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            reqwest::Url::parse(&self.issuer)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| self.issuer.clone())
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        match reqwest::Url::parse(&self.issuer) {
            Ok(url) if url.query().is_some() || url.fragment().is_some() => {
                return Err(invalid(
                    "console.oidc.issuer",
                    "must be the provider's issuer identifier, without a query or fragment",
                ));
            }
            Ok(url) if url.scheme() == "https" || (url.scheme() == "http" && local(&url)) => {}
            _ => {
                return Err(invalid(
                    "console.oidc.issuer",
                    "must be an https URL (http only for a provider on this machine)",
                ));
            }
        }
        if self.client_id.trim().is_empty() {
            return Err(invalid(
                "console.oidc.client_id",
                "must be the client id registered at the provider",
            ));
        }
        if self.client_secret.expose_secret().trim().is_empty() {
            return Err(invalid(
                "console.oidc.client_secret",
                "must be the client's secret (VEREDITO__CONSOLE__OIDC__CLIENT_SECRET)",
            ));
        }
        match reqwest::Url::parse(&self.redirect_url) {
            Ok(url)
                if (url.scheme() == "https" || (url.scheme() == "http" && local(&url)))
                    && url.path() == "/console/oidc/callback"
                    && url.query().is_none() => {}
            _ => {
                return Err(invalid(
                    "console.oidc.redirect_url",
                    "must be veredito's own https URL ending in /console/oidc/callback, as \
                     registered at the provider",
                ));
            }
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(invalid("console.oidc.scopes", "must include openid"));
        }
        if self.roles_claim.trim().is_empty() || self.roles_claim.split('.').any(str::is_empty) {
            return Err(invalid(
                "console.oidc.roles_claim",
                "must name the ID token's claim holding the role names (a dotted path reaches \
                 into objects: realm_access.roles)",
            ));
        }
        if Role::ALL
            .iter()
            .all(|role| self.roles.names(*role).is_empty())
        {
            return Err(invalid(
                "console.oidc.roles",
                "must give the provider's role names for at least one of reviewer, auditor, \
                 risk, compliance, privacy and pii",
            ));
        }
        Ok(())
    }
}

/// A provider on this machine (a test's, a developer's) may speak plain http.
fn local(url: &reqwest::Url) -> bool {
    matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// A list of words, or one string of them separated by spaces or commas (as an environment
/// variable gives it).
fn words<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Words {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Words::deserialize(d)? {
        Words::List(list) => list,
        Words::Text(text) => text
            .split([' ', ','])
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> Result<ConsoleSettings, String> {
        let console: ConsoleSettings = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| e.to_string())?;
        console.validate().map_err(|e| e.to_string())?;
        Ok(console)
    }

    const GOOD: &str = r#"
        [oidc]
        issuer = "https://login.bank.example/realms/staff"
        client_id = "veredito-console"
        client_secret = "s3cret"
        redirect_url = "https://veredito.bank.example/console/oidc/callback"
        [oidc.roles]
        reviewer = ["analyst"]
        auditor = "audit internal-audit"
        pii = ["pii-reader"]
    "#;

    fn held(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_reviewer_works_cases_and_reads_decisions_but_sees_no_whole_cpf() {
        let console = settings(GOOD).unwrap();
        let roles = &console.oidc.unwrap().roles;
        assert_eq!(roles.roles_of(&held(&["analyst"])), [Role::Reviewer]);
        assert_eq!(
            roles.scopes_of(&held(&["analyst", "unrelated"])),
            [Scope::ReviewsWrite, Scope::DecisionsRead]
        );
    }

    #[test]
    fn the_pii_role_adds_pii_read_to_the_others_and_each_scope_comes_once() {
        let console = settings(GOOD).unwrap();
        let roles = &console.oidc.unwrap().roles;
        assert_eq!(
            roles.scopes_of(&held(&["pii-reader", "internal-audit", "analyst"])),
            [Scope::ReviewsWrite, Scope::DecisionsRead, Scope::PiiRead]
        );
    }

    #[test]
    fn an_auditor_named_in_a_space_separated_string_only_reads() {
        let console = settings(GOOD).unwrap();
        let roles = &console.oidc.unwrap().roles;
        assert_eq!(
            roles.scopes_of(&held(&["internal-audit"])),
            [Scope::DecisionsRead]
        );
    }

    #[test]
    fn a_person_with_none_of_the_names_has_no_scope() {
        let console = settings(GOOD).unwrap();
        let roles = &console.oidc.unwrap().roles;
        assert!(roles.scopes_of(&held(&["staff", "Analyst"])).is_empty());
    }

    #[test]
    fn each_role_gives_what_its_console_pages_take() {
        use Scope::*;
        let cases = [
            (Role::Reviewer, vec![ReviewsWrite, DecisionsRead]),
            (Role::Auditor, vec![DecisionsRead]),
            (Role::Risk, vec![PoliciesWrite, ListsWrite, DecisionsRead]),
            (Role::Compliance, vec![FraudWrite, DecisionsRead]),
            (Role::Privacy, vec![SubjectsWrite]),
            (Role::Pii, vec![PiiRead]),
        ];
        for (role, scopes) in cases {
            assert_eq!(role.scopes(), scopes.as_slice(), "{role:?}");
            assert!(!role.scopes().contains(&OnboardingWrite), "{role:?}");
        }
    }

    #[test]
    fn defaults_ask_for_openid_and_profile_and_read_the_roles_claim() {
        let oidc = settings(GOOD).unwrap().oidc.unwrap();
        assert_eq!(oidc.scopes, ["openid", "profile"]);
        assert_eq!(oidc.roles_claim, "roles");
        assert_eq!(oidc.display_name(), "login.bank.example");
    }

    #[test]
    fn key_sign_in_stays_without_oidc_or_in_the_sandbox_and_otherwise_is_off() {
        let without = settings("").unwrap();
        assert!(without.key_sign_in(false));
        let with = settings(GOOD).unwrap();
        assert!(with.key_sign_in(true));
        assert!(!with.key_sign_in(false));
        let allowed = settings(&format!("key_sign_in = true\n{GOOD}")).unwrap();
        assert!(allowed.key_sign_in(false));
    }

    #[test]
    fn bad_settings_are_refused_naming_the_key() {
        let cases = [
            (
                "issuer = \"https://login.bank.example/realms/staff\"",
                "issuer = \"http://login.bank.example\"",
                "console.oidc.issuer",
            ),
            (
                "issuer = \"https://login.bank.example/realms/staff\"",
                "issuer = \"not a url\"",
                "console.oidc.issuer",
            ),
            (
                "client_id = \"veredito-console\"",
                "client_id = \" \"",
                "console.oidc.client_id",
            ),
            (
                "client_secret = \"s3cret\"",
                "client_secret = \"\"",
                "console.oidc.client_secret",
            ),
            (
                "redirect_url = \"https://veredito.bank.example/console/oidc/callback\"",
                "redirect_url = \"https://veredito.bank.example/callback\"",
                "console.oidc.redirect_url",
            ),
            (
                "[oidc.roles]",
                "scopes = [\"profile\"]\n[oidc.roles]",
                "console.oidc.scopes",
            ),
            (
                "[oidc.roles]",
                "roles_claim = \"realm_access.\"\n[oidc.roles]",
                "console.oidc.roles_claim",
            ),
        ];
        for (from, to, key) in cases {
            let toml = GOOD.replace(from, to);
            assert_ne!(toml, GOOD, "{from}");
            let error = settings(&toml).unwrap_err();
            assert!(error.contains(key), "{to}: {error}");
        }
        let no_roles = GOOD
            .replace("reviewer = [\"analyst\"]", "")
            .replace("auditor = \"audit internal-audit\"", "")
            .replace("pii = [\"pii-reader\"]", "");
        assert!(
            settings(&no_roles)
                .unwrap_err()
                .contains("console.oidc.roles")
        );
        assert!(
            settings("key_sign_in = false")
                .unwrap_err()
                .contains("console.key_sign_in")
        );
        assert!(
            settings(&GOOD.replace("pii =", "admin ="))
                .unwrap_err()
                .contains("admin")
        );
    }

    #[test]
    fn a_provider_on_this_machine_may_speak_http() {
        let toml = GOOD
            .replace(
                "https://login.bank.example/realms/staff",
                "http://localhost:9000",
            )
            .replace("https://veredito.bank.example", "http://127.0.0.1:8080");
        assert!(settings(&toml).is_ok());
    }

    #[test]
    fn the_secret_is_not_in_the_settings_debug() {
        let console = settings(GOOD).unwrap();
        assert!(!format!("{console:?}").contains("s3cret"));
    }
}
