//! What the benches share.

use vaultgate::sensitive::luhn;
use vaultgate::sensitive::{DataClass, Sensitive};
use vaultgate::vault::StoreKind;

/// The `n`-th distinct Luhn-valid test card number on the 424242 test BIN.
pub fn card(n: u64) -> Sensitive {
    let body = format!("424242{:09}", n % 1_000_000_000);
    Sensitive::parse(
        DataClass::Pan,
        &format!("{body}{}", luhn::check_digit(&body)),
    )
    .unwrap_or_else(|_| unreachable!("a 16-digit number is a card number"))
}

/// The embedded store `--store` names (`sled`, the default, or `fjall`).
#[allow(dead_code, reason = "store_backends picks its stores itself")]
pub fn store_arg() -> StoreKind {
    match std::env::args()
        .skip_while(|a| a != "--store")
        .nth(1)
        .as_deref()
    {
        None | Some("sled") => StoreKind::Sled,
        Some("fjall") => StoreKind::Fjall,
        Some(other) => panic!("--store {other}: sled or fjall"),
    }
}
