//! What the configuration's tests share: loading from given variables and files, and a
//! production file whose every credential is its own.

use std::path::{Path, PathBuf};

use super::{ConfigError, Settings, Sources};

pub(super) const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub(super) fn load(env: &[(&str, &str)], file: Option<PathBuf>) -> Result<Settings, ConfigError> {
    Settings::load(&Sources {
        config_dir: Some(Path::new(ROOT).join("config")),
        file,
        overrides: Vec::new(),
        ignore_env: false,
        environment: Some(
            env.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
    })
}

/// A production file: every credential its own, none of the sandbox's.
pub(super) fn production_file(replace: Option<(&str, &str)>) -> tempfile_path::TempToml {
    let mut text = String::from(
        r#"
[unico]
api_key = "prod-unico-key"
service_account = "veredito@tenant.iam.acesso.io"
private_key_pem = "-----BEGIN PRIVATE KEY-----\nprod\n-----END PRIVATE KEY-----"
webhook_secret = "prod-webhook-secret-123"
[qitech]
api_key = "prod-qitech-key"
[zro]
api_id = "prod-zro-id"
api_key = "prod-zro-key"
[[api.keys]]
name = "backend"
key_sha256 = "0000000000000000000000000000000000000000000000000000000000000001"
scopes = ["onboarding:write"]
[pii]
active_key_id = "k1"
hash_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
[[pii.keys]]
id = "k1"
key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
"#,
    );
    if let Some((from, to)) = replace {
        assert!(text.contains(from), "{from}");
        text = text.replace(from, to);
    }
    tempfile_path::TempToml::new(&text)
}

/// A uniquely named TOML file removed when dropped.
pub(super) mod tempfile_path {
    pub struct TempToml(pub std::path::PathBuf);
    impl TempToml {
        pub fn new(text: &str) -> TempToml {
            let path = std::env::temp_dir().join(format!("veredito-{}.toml", uuid::Uuid::new_v4()));
            std::fs::write(&path, text).unwrap();
            TempToml(path)
        }
    }
    impl Drop for TempToml {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
