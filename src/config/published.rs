//! The guard against the sandbox's published values: with the sandbox off, none of its
//! credentials (they are in this repository, anyone can read them) may open anything.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{
    ApiSettings, ConfigError, FraudSharingSettings, Mistake, PiiSettings, Settings, invalid,
    mistake,
};

/// The sandbox's published values, compiled in so that a production start can recognise them
/// even where the file is absent (the image does not carry it).
const SANDBOX_FILE: &str = include_str!("../../config/sandbox.toml");
/// The public half of the sandbox's unico key pair. The private half stays out of the binary;
/// the public one is enough to recognise it.
const SANDBOX_UNICO_PUBLIC_KEY: &str =
    include_str!("../../config/sandbox/unico-service-account.pub.pem");

/// Whether `pem` holds the sandbox's unico private key, in whatever encoding: PKCS#8 or PKCS#1,
/// LF or CRLF, any line width. The key is read by the parser the unico client signs with
/// (jsonwebtoken's), made to sign a fixed message, and the signature checked against the
/// published public key: only the same key material passes, however its text is written. A
/// text that parser cannot read is no key the service could use either.
fn is_sandbox_unico_key(pem: &str) -> bool {
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, crypto};
    const PROBE: &[u8] = b"veredito: is this the sandbox's published unico key?";
    let Ok(key) = EncodingKey::from_rsa_pem(pem.trim().as_bytes()) else {
        return false;
    };
    let Ok(signature) = crypto::sign(PROBE, &key, Algorithm::RS256) else {
        return false;
    };
    DecodingKey::from_rsa_pem(SANDBOX_UNICO_PUBLIC_KEY.as_bytes())
        .and_then(|published| crypto::verify(&signature, PROBE, &published, Algorithm::RS256))
        .unwrap_or(false)
}

/// Every configured value that is one of the sandbox's published ones, each naming its key.
pub(super) fn mistakes(settings: &Settings) -> Result<Vec<Mistake>, ConfigError> {
    #[derive(Deserialize)]
    struct Published {
        unico: PublishedUnico,
        qitech: PublishedKey,
        zro: PublishedKey,
        api: ApiSettings,
        pii: PiiSettings,
        fraud_sharing: FraudSharingSettings,
    }
    #[derive(Deserialize)]
    struct PublishedUnico {
        api_key: String,
        webhook_secret: String,
    }
    #[derive(Deserialize)]
    struct PublishedKey {
        api_key: String,
    }
    let published: Published = config::Config::builder()
        .add_source(config::File::from_str(
            SANDBOX_FILE,
            config::FileFormat::Toml,
        ))
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| invalid("sandbox", format!("the built-in sandbox file: {e}")))?;
    let mut found = Vec::new();
    let mut refuse = |key: &str, what: String| {
        found.push(mistake(
            key,
            format!(
                "{what} is the sandbox's published value; with sandbox.enabled = false \
                 configure a value of your own"
            ),
        ));
    };
    let same = |a: &SecretString, b: &str| a.expose_secret().trim() == b.trim();
    if same(&settings.unico.api_key, &published.unico.api_key) {
        refuse("unico.api_key", "the key".into());
    }
    if same(
        &settings.unico.webhook_secret,
        &published.unico.webhook_secret,
    ) {
        refuse("unico.webhook_secret", "the secret".into());
    }
    if let Some(pem) = &settings.unico.private_key_pem {
        if is_sandbox_unico_key(pem.expose_secret()) {
            refuse("unico.private_key_pem", "the key".into());
        }
    } else if let Some(path) = &settings.unico.private_key_path
        && std::fs::read_to_string(path).is_ok_and(|pem| is_sandbox_unico_key(&pem))
    {
        refuse(
            "unico.private_key_path",
            format!("the key in {}", path.display()),
        );
    }
    if same(&settings.qitech.api_key, &published.qitech.api_key) {
        refuse("qitech.api_key", "the key".into());
    }
    if same(&settings.zro.api_key, &published.zro.api_key) {
        refuse("zro.api_key", "the key".into());
    }
    for key in &settings.api.keys {
        if published
            .api
            .keys
            .iter()
            .any(|p| p.key_sha256.eq_ignore_ascii_case(&key.key_sha256))
        {
            refuse("api.keys", format!("the key `{}`", key.name));
        }
    }
    if let (Some(own), Some(published)) = (
        &settings.fraud_sharing.secret,
        &published.fraud_sharing.secret,
    ) && same(own, published.expose_secret())
    {
        refuse("fraud_sharing.secret", "the secret".into());
    }
    if same(
        &settings.pii.hash_key,
        published.pii.hash_key.expose_secret(),
    ) {
        refuse("pii.hash_key", "the key".into());
    }
    for key in &settings.pii.keys {
        if published
            .pii
            .keys
            .iter()
            .any(|p| same(&key.key, p.key.expose_secret()))
        {
            refuse("pii.keys", format!("the key `{}`", key.id));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::is_sandbox_unico_key;
    use crate::config::fixtures::{ROOT, load, production_file};

    #[test]
    fn the_sandbox_key_is_recognised_by_its_key_material() {
        let pem = std::fs::read_to_string(
            Path::new(ROOT).join("config/sandbox/unico-service-account.pem"),
        )
        .unwrap();
        assert!(is_sandbox_unico_key(&pem));
        assert!(!is_sandbox_unico_key("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn production_refuses_the_sandbox_key_in_any_encoding() {
        let pkcs8 = std::fs::read_to_string(
            Path::new(ROOT).join("config/sandbox/unico-service-account.pem"),
        )
        .unwrap();
        // The same key as `openssl rsa -traditional` writes it.
        let pkcs1 = std::fs::read_to_string(
            Path::new(ROOT).join("src/providers/unico/testdata/sandbox_service_account_pkcs1.pem"),
        )
        .unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let crlf = |pem: &str| pem.replace('\n', "\r\n");
        // Base64 wrapped at 76 columns instead of 64.
        let rewrapped = |pem: &str| {
            let body: String = pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<Vec<_>>()
                .concat();
            let lines: Vec<String> = body
                .as_bytes()
                .chunks(76)
                .map(|c| String::from_utf8(c.to_vec()).unwrap())
                .collect();
            let first = pem.lines().next().unwrap();
            let last = pem.lines().last().unwrap();
            format!("{first}\n{}\n{last}\n", lines.join("\n"))
        };
        let variants = [
            ("PKCS#8 with CRLF", crlf(&pkcs8)),
            ("PKCS#1", pkcs1.clone()),
            ("PKCS#1 with CRLF", crlf(&pkcs1)),
            ("PKCS#8 wrapped at 76", rewrapped(&pkcs8)),
        ];
        let file = production_file(None);
        for (what, pem) in &variants {
            // Given inline, by the environment.
            let error = load(
                &[("VEREDITO__UNICO__PRIVATE_KEY_PEM", pem.as_str())],
                Some(file.0.clone()),
            )
            .err()
            .unwrap_or_else(|| panic!("{what}: the published key was accepted"))
            .to_string();
            assert!(
                error.contains("unico.private_key_pem") && error.contains("published"),
                "{what}: {error}"
            );
            // In a mounted file.
            let mounted =
                std::env::temp_dir().join(format!("veredito-{}.pem", uuid::Uuid::new_v4()));
            std::fs::write(&mounted, pem).unwrap();
            let path = mounted.to_string_lossy().into_owned();
            let with_path = production_file(Some((
                "private_key_pem = \"-----BEGIN PRIVATE KEY-----\\nprod\\n-----END PRIVATE KEY-----\"",
                &format!("private_key_path = {path:?}"),
            )));
            let refused = load(&[], Some(with_path.0.clone()));
            std::fs::remove_file(&mounted).ok();
            let error = refused
                .err()
                .unwrap_or_else(|| panic!("{what}: the published key was accepted from a file"))
                .to_string();
            assert!(
                error.contains("unico.private_key_path") && error.contains("published"),
                "{what}: {error}"
            );
        }
        // Another key, in either encoding, is not the published one.
        for other in [
            include_str!("../providers/unico/testdata/private_key.pem"),
            include_str!("../providers/unico/testdata/private_key_pkcs1.pem"),
        ] {
            load(
                &[("VEREDITO__UNICO__PRIVATE_KEY_PEM", &crlf(other))],
                Some(file.0.clone()),
            )
            .unwrap();
        }
    }

    #[test]
    fn production_refuses_every_published_sandbox_value() {
        let published = [
            (
                (
                    "api_key = \"prod-unico-key\"",
                    "api_key = \"sandbox-api-key\"",
                ),
                "unico.api_key",
            ),
            (
                (
                    "webhook_secret = \"prod-webhook-secret-123\"",
                    "webhook_secret = \"sandbox-webhook-secret\"",
                ),
                "unico.webhook_secret",
            ),
            (
                (
                    "private_key_pem = \"-----BEGIN PRIVATE KEY-----\\nprod\\n-----END PRIVATE KEY-----\"",
                    "private_key_path = \"config/sandbox/unico-service-account.pem\"",
                ),
                "unico.private_key_path",
            ),
            (
                (
                    "api_key = \"prod-qitech-key\"",
                    "api_key = \"sandbox-qitech-key\"",
                ),
                "qitech.api_key",
            ),
            (
                (
                    "api_key = \"prod-zro-key\"",
                    "api_key = \"sandbox-zro-key\"",
                ),
                "zro.api_key",
            ),
            (
                (
                    "0000000000000000000000000000000000000000000000000000000000000001",
                    "35f4c8d173c967849eeff700e1a33e42328ccce4c89e0c4c53e34c9c7f14f9e1",
                ),
                "api.keys",
            ),
            (
                (
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                    "W4wusdwNWgkz296xz0C5lG1zoJAbT/o97AKxatRUrzI=",
                ),
                "pii.hash_key",
            ),
            (
                (
                    "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
                    "BRiCy4R4zdcy33daNragGMYBNF9FCr07ZNORKTW8sik=",
                ),
                "pii.keys",
            ),
        ];
        for ((from, to), key) in published {
            let file = production_file(Some((from, to)));
            let error = load(&[], Some(file.0.clone())).unwrap_err().to_string();
            assert!(
                error.contains(key) && error.contains("published"),
                "{key}: {error}"
            );
        }
        // The published API keys given by the environment are refused as well.
        let file = production_file(None);
        let list = r#"[{"name":"x","key_sha256":"e1ea1a0a27b6c9d40c46b42f1d54c1cc7a32c628f27cfd3732e943e1177d230b","scopes":["onboarding:write"]}]"#;
        let error = load(&[("VEREDITO_API_KEYS", list)], Some(file.0.clone()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("api.keys"), "{error}");
    }
}
