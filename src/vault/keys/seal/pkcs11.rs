//! The PKCS#11 seal: the master key encrypted inside an HSM by an AES-256 key that is
//! sensitive and non-extractable, with `CKM_AES_GCM` (`C_Encrypt` / `C_Decrypt`,
//! a random 96-bit IV, a 128-bit tag, associated data naming the keyring).
//!
//! AES-GCM rather than `CKM_AES_KEY_WRAP_PAD`: key wrapping would need the master key
//! as an object inside the token, and GCM is what SoftHSM2, cloud HSMs and most
//! hardware modules all offer for `C_Encrypt`. The module is loaded, logged into and
//! closed again at each unseal (and at `init`, `rekey`, `reseal`); requests never call
//! it, since the unsealed keys then live in memory like any other seal's.
//!
//! Every call into the module happens inside one synchronous function: a PKCS#11
//! session is not `Send`.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::settings::{DEFAULT_PIN_ENV, SealSettings};
use crate::error::{Error, HsmFailure, Result};
use crate::vault::keys::crypto::{self, SecretKey};

/// The label a new wrapping key gets when none is configured.
pub const DEFAULT_KEY_LABEL: &str = "vaultgate-master";
/// The mechanism recorded in the keyring file.
const MECHANISM: &str = "CKM_AES_GCM";
const AAD: &[u8] = b"vaultgate-keyring/2 master pkcs11";

/// `seal` with `kind = "pkcs11"`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Seal {
    /// The token the key lives in, when chosen by label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_label: Option<String>,
    /// The slot, when chosen by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slot: Option<u64>,
    /// The wrapping key's `CKA_LABEL`.
    key_label: String,
    /// Always `CKM_AES_GCM`.
    mechanism: String,
    /// The 96-bit IV, base64.
    iv: String,
    /// The master key encrypted by the HSM (tag last), base64.
    ciphertext: String,
}

/// What the HSM says about a wrapping key (read back through the module).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HsmKeyInfo {
    pub label: String,
    pub extractable: bool,
    pub never_extractable: bool,
    pub sensitive: bool,
    pub value_len: u64,
}

fn hsm(kind: HsmFailure, message: impl Into<String>) -> Error {
    Error::Hsm(kind, message.into())
}

/// Map a module error to ours. The module's own text names no secret, but it is
/// kept out anyway: only the return value's name goes in the message.
fn ck(what: &'static str) -> impl Fn(CkError) -> Error {
    move |e| match e {
        CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _) => {
            hsm(
                HsmFailure::PinIncorrect,
                "the HSM refused the PIN (wrong PIN)",
            )
        }
        CkError::Pkcs11(RvError::PinLocked, _) => {
            hsm(HsmFailure::PinIncorrect, "the HSM's user PIN is locked")
        }
        CkError::Pkcs11(RvError::TokenNotPresent | RvError::SlotIdInvalid, _) => {
            hsm(HsmFailure::TokenMissing, "the token is not present")
        }
        CkError::Pkcs11(rv, _) => hsm(HsmFailure::Failed, format!("{what} failed: {rv:?}")),
        _ => hsm(HsmFailure::Failed, format!("{what} failed")),
    }
}

/// An open, logged-in session; everything else about the module stays in here.
struct Hsm {
    session: Session,
    // Dropped after the session: finalizes the module.
    _ctx: Pkcs11,
}

fn read_pin(settings: &SealSettings) -> Result<AuthPin> {
    let pin =
        if let Some(path) = &settings.pin_file {
            Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                Error::io(format!("read vault.seal.pin_file {}", path.display()), e)
            })?)
        } else {
            let var = settings.pin_env.as_deref().unwrap_or(DEFAULT_PIN_ENV);
            Zeroizing::new(std::env::var(var).map_err(|_| {
                hsm(
                    HsmFailure::PinIncorrect,
                    format!("no HSM PIN: set {var} or vault.seal.pin_file"),
                )
            })?)
        };
    Ok(AuthPin::from(pin.trim_end_matches(['\r', '\n']).to_owned()))
}

impl Hsm {
    /// Load the module, find the token (by slot, else by label) and log in.
    fn open(settings: &SealSettings, token_label: Option<&str>, slot: Option<u64>) -> Result<Hsm> {
        let module = settings.module.as_deref().ok_or_else(|| {
            Error::Config("vault.seal.module (--hsm-module): the PKCS#11 module is required".into())
        })?;
        let ctx = load(module)?;
        let slots = ctx
            .get_slots_with_initialized_token()
            .map_err(ck("listing the HSM's slots"))?;
        let found = match (slot, token_label) {
            (Some(id), _) => slots.into_iter().find(|s| s.id() == id),
            (None, Some(label)) => slots.into_iter().find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|info| info.label().trim_end() == label)
            }),
            (None, None) => {
                return Err(Error::Config(
                    "vault.seal: name the HSM token (token_label or slot)".into(),
                ));
            }
        };
        let slot = found.ok_or_else(|| match (slot, token_label) {
            (Some(id), _) => hsm(
                HsmFailure::TokenMissing,
                format!("no initialised token in slot {id}"),
            ),
            (None, label) => hsm(
                HsmFailure::TokenMissing,
                format!(
                    "no token labelled `{}` in the module",
                    label.unwrap_or_default()
                ),
            ),
        })?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(ck("opening an HSM session"))?;
        session
            .login(UserType::User, Some(&read_pin(settings)?))
            .map_err(ck("logging in to the HSM"))?;
        Ok(Hsm { session, _ctx: ctx })
    }

    /// The secret key labelled `label`, if exactly one.
    fn find_key(&self, label: &str) -> Result<Option<ObjectHandle>> {
        let found = self
            .session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(ck("searching the token"))?;
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(hsm(
                HsmFailure::KeyMissing,
                format!("several keys in the token are labelled `{label}`"),
            )),
        }
    }

    fn key(&self, label: &str) -> Result<ObjectHandle> {
        self.find_key(label)?.ok_or_else(|| {
            hsm(
                HsmFailure::KeyMissing,
                format!("no key labelled `{label}` in the token"),
            )
        })
    }

    fn info(&self, key: ObjectHandle, label: &str) -> Result<HsmKeyInfo> {
        let attrs = self
            .session
            .get_attributes(
                key,
                &[
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                    AttributeType::Sensitive,
                    AttributeType::ValueLen,
                ],
            )
            .map_err(ck("reading the key's attributes"))?;
        let mut info = HsmKeyInfo {
            label: label.to_owned(),
            // Unknown counts as the unsafe answer.
            extractable: true,
            never_extractable: false,
            sensitive: false,
            value_len: 0,
        };
        for a in attrs {
            match a {
                Attribute::Extractable(v) => info.extractable = v,
                Attribute::NeverExtractable(v) => info.never_extractable = v,
                Attribute::Sensitive(v) => info.sensitive = v,
                Attribute::ValueLen(v) => info.value_len = u64::from(v),
                _ => {}
            }
        }
        Ok(info)
    }

    /// Refuse a key whose value could leave the HSM, unless allowed.
    fn check_key(&self, key: ObjectHandle, label: &str, settings: &SealSettings) -> Result<()> {
        let info = self.info(key, label)?;
        if (info.extractable || !info.sensitive) && !settings.allow_extractable {
            return Err(hsm(
                HsmFailure::KeyExtractable,
                format!(
                    "the key `{label}` is extractable or not sensitive, so its value could \
                     leave the HSM; refused (vault.seal.allow_extractable overrides)"
                ),
            ));
        }
        Ok(())
    }

    fn generate(&self, label: &str) -> Result<ObjectHandle> {
        self.session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Wrap(false),
                    Attribute::Unwrap(false),
                    Attribute::Label(label.as_bytes().to_vec()),
                ],
            )
            .map_err(ck("generating the wrapping key"))
    }

    fn encrypt(&self, key: ObjectHandle, master: &SecretKey) -> Result<([u8; 12], Vec<u8>)> {
        let mut iv: [u8; crypto::NONCE_LEN] = crypto::random_bytes();
        let mut iv_param = iv;
        let params =
            GcmParams::new(&mut iv_param, AAD, 128.into()).map_err(ck("preparing AES-GCM"))?;
        let ct = self
            .session
            .encrypt(&Mechanism::AesGcm(params), key, master.expose())
            .map_err(ck("encrypting the master key (CKM_AES_GCM)"))?;
        // The module may not write back into the IV; ours is the one used.
        iv.copy_from_slice(&iv_param);
        Ok((iv, ct))
    }

    fn decrypt(&self, key: ObjectHandle, iv: &[u8], ct: &[u8]) -> Result<SecretKey> {
        let mut iv = iv.to_vec();
        let params = GcmParams::new(&mut iv, AAD, 128.into()).map_err(ck("preparing AES-GCM"))?;
        let raw = Zeroizing::new(
            self.session
                .decrypt(&Mechanism::AesGcm(params), key, ct)
                .map_err(|e| match e {
                    CkError::Pkcs11(
                        RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange,
                        _,
                    ) => Error::Keyring(
                        "the HSM key does not open this keyring, or the file was edited".into(),
                    ),
                    other => ck("decrypting the master key (CKM_AES_GCM)")(other),
                })?,
        );
        SecretKey::from_slice(&raw)
    }
}

fn load(module: &Path) -> Result<Pkcs11> {
    let load_err = || {
        hsm(
            HsmFailure::ModuleLoad,
            format!("cannot load the PKCS#11 module {}", module.display()),
        )
    };
    if !module.is_file() {
        return Err(load_err());
    }
    let ctx = Pkcs11::new(module).map_err(|_| load_err())?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(ctx),
        Err(_) => Err(load_err()),
    }
}

impl Pkcs11Seal {
    /// Encrypt `master` under the labelled key, creating the key if the token has none.
    pub fn create(settings: &SealSettings, master: &SecretKey) -> Result<Self> {
        let key_label = settings
            .key_label
            .clone()
            .unwrap_or_else(|| DEFAULT_KEY_LABEL.to_owned());
        let hsm = Hsm::open(settings, settings.token_label.as_deref(), settings.slot)?;
        let key = match hsm.find_key(&key_label)? {
            Some(key) => key,
            None => hsm.generate(&key_label)?,
        };
        hsm.check_key(key, &key_label, settings)?;
        let (iv, ct) = hsm.encrypt(key, master)?;
        // Prove the round trip before anything is written.
        let opened = hsm.decrypt(key, &iv, &ct)?;
        if opened.expose() != master.expose() {
            return Err(hsm_failed("the HSM did not give back the master key"));
        }
        Ok(Pkcs11Seal {
            token_label: settings.token_label.clone(),
            slot: settings.slot,
            key_label,
            mechanism: MECHANISM.to_owned(),
            iv: B64.encode(iv),
            ciphertext: B64.encode(ct),
        })
    }

    /// The token and key this seal names; the settings' own win where given.
    fn target<'a>(&'a self, settings: &'a SealSettings) -> (Option<&'a str>, Option<u64>, &'a str) {
        let (token, slot) = match (&settings.token_label, settings.slot) {
            (None, None) => (self.token_label.as_deref(), self.slot),
            (t, s) => (t.as_deref(), s),
        };
        let key = settings.key_label.as_deref().unwrap_or(&self.key_label);
        (token, slot, key)
    }

    /// Open the master key: one session with the module, then none until the next unseal.
    pub fn open(&self, settings: &SealSettings) -> Result<SecretKey> {
        if self.mechanism != MECHANISM {
            return Err(Error::Keyring(
                "unknown PKCS#11 mechanism in the keyring".into(),
            ));
        }
        let bad = || Error::Keyring("the keyring file is damaged or was edited".into());
        let iv = B64.decode(&self.iv).map_err(|_| bad())?;
        let ct = B64.decode(&self.ciphertext).map_err(|_| bad())?;
        let (token, slot, label) = self.target(settings);
        let hsm = Hsm::open(settings, token, slot)?;
        let key = hsm.key(label)?;
        hsm.check_key(key, label, settings)?;
        hsm.decrypt(key, &iv, &ct)
    }

    /// Read the wrapping key's attributes back through the module.
    pub fn key_info(&self, settings: &SealSettings) -> Result<HsmKeyInfo> {
        let (token, slot, label) = self.target(settings);
        let hsm = Hsm::open(settings, token, slot)?;
        let key = hsm.key(label)?;
        hsm.info(key, label)
    }
}

fn hsm_failed(message: &'static str) -> Error {
    hsm(HsmFailure::Failed, message)
}
