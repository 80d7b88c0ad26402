//! What each provider receives and why (the contract's "Subject rights"), as the access report
//! names the recipients of the person's data.

/// What each provider receives and why (the contract's "Subject rights"). Which were called is
/// read from the call log; what a call carries is what its client sends.
pub(super) fn recipient_of(provider: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match provider {
        "unico" => Some((
            "unico",
            "biometric identification (liveness, identity against the CPF holder, fraudster \
             face alert) to prevent fraud in account opening",
            "LGPD Art. 11 II g",
        )),
        "qitech" => Some((
            "QI Tech",
            "device registration, to prevent fraud in the account's later use",
            "LGPD Art. 7 IX",
        )),
        "zro" => Some((
            "Zro",
            "the Open Finance enrollment's risk assessment",
            "LGPD Art. 7 IX",
        )),
        _ => None,
    }
}

/// The data a call of `operation` carries.
pub(super) fn data_of(provider: &str, operation: &str) -> &'static [&'static str] {
    match (provider, operation) {
        ("unico", "create_process") => &[
            "cpf",
            "name",
            "selfie",
            "birth_date",
            "gender",
            "email",
            "phone",
        ],
        ("qitech", "create_account") => &["account_ids"],
        ("qitech", "create_person") => &["cpf", "name", "email", "phone", "account_ids"],
        ("qitech", "register_device") => &["cpf", "device_identifiers", "account_ids"],
        ("qitech", "get_device") => &["device_identifiers", "account_ids"],
        ("zro", _) => &["device_identifiers", "device_signals"],
        _ => &[],
    }
}
