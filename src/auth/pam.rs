//! System accounts verified through PAM (cargo feature `pam`), on the service
//! `pop1d`: `pam_authenticate`, then `pam_acct_mgmt`.
//!
//! A small FFI module of its own: pop1d needs five functions of libpam, and the
//! `pam-sys` crates are either unmaintained (0.5) or generate their bindings
//! with bindgen and libclang at build time (1.0 alphas).
//!
//! The same cost for every refusal, as far as pop1d can make it:
//! - an existing account always goes through the whole PAM transaction with
//!   the name and password it was given, even when pop1d refuses it whatever
//!   PAM says (uid 0, a uid below `--first-valid-uid`, an empty password): its
//!   refusal then costs exactly what a wrong password for that account costs,
//!   and PAM logs and counts it like one;
//! - an unknown name (no account for `getpwnam`) goes through PAM too, for
//!   PAM's log and failure counters, but pam_unix answers it at once, without
//!   hashing anything: pop1d adds one verification of a dummy hash of
//!   libxcrypt's default method and cost, what a wrong password for an account
//!   made by `passwd` or `chpasswd` costs;
//! - a name USER's rules refused never reaches PAM: only the dummy.
//!
//! What PAM modules do inside the stack is theirs, and pop1d cannot equal it
//! exactly: pam_unix refuses a locked (`!`, `*`) entry without hashing, so
//! under PAM a locked account answers faster than an open one; and on Debian 12
//! a wrong password through pam_unix took about twice one yescrypt
//! verification, an unknown name (PAM, then the dummy) about once. Only a
//! fixed deadline for the whole answer would hide that. `--auth shadow` has
//! none of these differences.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

use zeroize::{Zeroize, Zeroizing};

use super::crypt::{Hash, Unverifiable};
use super::shadow::default_dummy;
use super::system;

/// The PAM service name: `/etc/pam.d/pop1d`.
pub const SERVICE: &CStr = c"pop1d";

/// A yescrypt hash of a random password nobody knows, verified in place of the
/// dummy if libxcrypt cannot make one at start-up.
const FALLBACK_DUMMY: &str =
    "$y$j9T$a5M6cgfwi6uQxVC6aVQEE.$qbYn0Zqi8FDwIQ0MbuCWW/falEvKTI0zWFnProB4aO9";

mod ffi {
    use std::ffi::{c_char, c_int, c_uint, c_void};

    pub const PAM_SUCCESS: c_int = 0;
    pub const PAM_BUF_ERR: c_int = 5;
    pub const PAM_PERM_DENIED: c_int = 6;
    pub const PAM_AUTH_ERR: c_int = 7;
    pub const PAM_CRED_INSUFFICIENT: c_int = 8;
    pub const PAM_USER_UNKNOWN: c_int = 10;
    pub const PAM_MAXTRIES: c_int = 11;
    pub const PAM_NEW_AUTHTOK_REQD: c_int = 12;
    pub const PAM_ACCT_EXPIRED: c_int = 13;
    pub const PAM_CONV_ERR: c_int = 19;
    pub const PAM_AUTHTOK_EXPIRED: c_int = 27;

    pub const PAM_USER: c_int = 2;
    pub const PAM_SILENT: c_int = 0x8000;
    pub const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;

    pub const PAM_RHOST: c_int = 4;
    pub const PAM_FAIL_DELAY: c_int = 10;

    pub const PAM_PROMPT_ECHO_OFF: c_int = 1;
    pub const PAM_ERROR_MSG: c_int = 3;
    pub const PAM_TEXT_INFO: c_int = 4;
    pub const PAM_MAX_NUM_MSG: c_int = 32;

    /// `pam_handle_t`, opaque.
    #[repr(C)]
    pub struct PamHandle {
        _opaque: [u8; 0],
    }

    /// `struct pam_message`.
    #[repr(C)]
    pub struct PamMessage {
        pub msg_style: c_int,
        pub msg: *const c_char,
    }

    /// `struct pam_response`.
    #[repr(C)]
    pub struct PamResponse {
        pub resp: *mut c_char,
        pub resp_retcode: c_int,
    }

    /// The conversation function of `struct pam_conv`.
    pub type ConvFn = unsafe extern "C" fn(
        num_msg: c_int,
        msg: *mut *const PamMessage,
        resp: *mut *mut PamResponse,
        appdata_ptr: *mut c_void,
    ) -> c_int;

    /// `struct pam_conv`.
    #[repr(C)]
    pub struct PamConv {
        pub conv: Option<ConvFn>,
        pub appdata_ptr: *mut c_void,
    }

    /// The `PAM_FAIL_DELAY` item: `void (*)(int retval, unsigned usec_delay,
    /// void *appdata_ptr)`.
    pub type FailDelayFn = unsafe extern "C" fn(c_int, c_uint, *mut c_void);

    #[link(name = "pam")]
    extern "C" {
        pub fn pam_start(
            service_name: *const c_char,
            user: *const c_char,
            pam_conversation: *const PamConv,
            pamh: *mut *mut PamHandle,
        ) -> c_int;
        pub fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
        pub fn pam_get_item(
            pamh: *const PamHandle,
            item_type: c_int,
            item: *mut *const c_void,
        ) -> c_int;
        pub fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
        pub fn pam_acct_mgmt(pamh: *mut PamHandle, flags: c_int) -> c_int;
        pub fn pam_end(pamh: *mut PamHandle, pam_status: c_int) -> c_int;
    }
}

/// Verifies passwords of system accounts through PAM.
#[derive(Debug)]
pub struct Pam {
    first_valid_uid: u32,
    /// Verified for a name PAM answers without hashing.
    dummy: Hash,
}

impl Pam {
    /// Makes the dummy hash as [`super::Shadow::new`] does (one verification),
    /// or takes a fixed yescrypt one if libxcrypt cannot.
    pub fn new(first_valid_uid: u32) -> Pam {
        let dummy = default_dummy()
            .unwrap_or_else(|_| Hash::parse(FALLBACK_DUMMY).expect("valid fallback hash"));
        Pam {
            first_valid_uid,
            dummy,
        }
    }

    /// True only when PAM's `pop1d` stack authenticates `user` with `password`
    /// and then accepts the account, the account exists for `getpwnam` with a
    /// uid neither 0 nor below `first_valid_uid`, and the password is not
    /// empty. `rhost` is the client's address (`PAM_RHOST`). An error when PAM
    /// itself failed (no stack, a module's fault, an unreachable service).
    pub fn verify(
        &self,
        user: Option<&str>,
        password: &[u8],
        rhost: &str,
    ) -> Result<bool, Unverifiable> {
        let uid = user.and_then(system::lookup).map(|account| account.uid);
        let plan = Plan::new(user, uid, password, self.first_valid_uid);
        plan.settle(
            || match user {
                Some(name) => transaction(name, password, rhost),
                None => Ok(false),
            },
            || self.dummy.verify(password),
        )
    }
}

/// What one attempt runs, decided before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    /// Run the PAM transaction.
    pam: bool,
    /// Verify the dummy hash.
    dummy: bool,
    /// Whether PAM's success may open the account.
    eligible: bool,
}

impl Plan {
    fn new(user: Option<&str>, uid: Option<u32>, password: &[u8], first_valid_uid: u32) -> Plan {
        match (user, uid) {
            (None, _) => Plan {
                pam: false,
                dummy: true,
                eligible: false,
            },
            (Some(_), None) => Plan {
                pam: true,
                dummy: true,
                eligible: false,
            },
            (Some(_), Some(uid)) => Plan {
                pam: true,
                dummy: false,
                eligible: uid != 0
                    && uid >= first_valid_uid
                    && !password.is_empty()
                    && !password.contains(&0),
            },
        }
    }

    /// Run what the plan says, all of it whatever the first step answered.
    fn settle(
        self,
        pam: impl FnOnce() -> Result<bool, Unverifiable>,
        dummy: impl FnOnce() -> Result<bool, Unverifiable>,
    ) -> Result<bool, Unverifiable> {
        let authenticated = if self.pam { pam() } else { Ok(false) };
        let dummy = if self.dummy { dummy() } else { Ok(false) };
        let authenticated = authenticated?;
        dummy?;
        Ok(self.eligible && authenticated)
    }
}

/// The password, for the conversation function.
struct Secret {
    ptr: *const u8,
    len: usize,
}

/// One PAM transaction: start, the items, authenticate, account, end.
fn transaction(name: &str, password: &[u8], rhost: &str) -> Result<bool, Unverifiable> {
    let Ok(c_name) = CString::new(name) else {
        return Ok(false);
    };
    let c_rhost = CString::new(rhost.split('\0').next().unwrap_or("")).unwrap_or_default();
    // A NUL would end the C string: PAM gets what precedes it (the caller
    // refuses such a password whatever PAM answers).
    let phrase = Zeroizing::new(password.split(|&b| b == 0).next().unwrap_or(&[]).to_vec());
    let secret = Secret {
        ptr: phrase.as_ptr(),
        len: phrase.len(),
    };
    let conv = ffi::PamConv {
        conv: Some(converse),
        appdata_ptr: std::ptr::from_ref(&secret).cast_mut().cast(),
    };
    let mut pamh: *mut ffi::PamHandle = std::ptr::null_mut();
    // SAFETY: the service, user and conversation outlive the call; libpam
    // copies the `pam_conv` struct, and its `appdata_ptr` (`secret`, which
    // points into `phrase`) lives until after `pam_end` below. `pamh` is
    // writable and set to a handle, or NULL on failure.
    let status = unsafe { ffi::pam_start(SERVICE.as_ptr(), c_name.as_ptr(), &conv, &mut pamh) };
    if status != ffi::PAM_SUCCESS || pamh.is_null() {
        return Err(Unverifiable("pam_start failed for the service pop1d"));
    }
    let flags = ffi::PAM_SILENT | ffi::PAM_DISALLOW_NULL_AUTHTOK;
    let no_delay: ffi::FailDelayFn = no_fail_delay;
    // SAFETY: `pamh` is the live handle from pam_start, used until pam_end and
    // not after. PAM_RHOST takes a NUL-terminated string, which libpam copies;
    // PAM_FAIL_DELAY takes a function pointer of the `FailDelayFn` type, passed
    // as `const void *` as the PAM API has it. The conversation's data stays
    // alive across every call (see above). pam_get_item writes a pointer into
    // `item`, to a string libpam owns until pam_end, which is read before it.
    let status = unsafe {
        let mut status = ffi::pam_set_item(pamh, ffi::PAM_RHOST, c_rhost.as_ptr().cast());
        if status == ffi::PAM_SUCCESS {
            status = ffi::pam_set_item(pamh, ffi::PAM_FAIL_DELAY, no_delay as *const c_void);
        }
        if status == ffi::PAM_SUCCESS {
            status = ffi::pam_authenticate(pamh, flags);
        }
        if status == ffi::PAM_SUCCESS {
            status = ffi::pam_acct_mgmt(pamh, flags);
        }
        // A module may have changed the user (a name map, a domain prefix):
        // the account served is the one named, so PAM must have vouched for
        // exactly that name. PAM_USER is a NUL-terminated string owned by
        // libpam, read here before pam_end frees it.
        if status == ffi::PAM_SUCCESS {
            let mut item: *const c_void = std::ptr::null();
            let got = ffi::pam_get_item(pamh, ffi::PAM_USER, &mut item);
            let same = got == ffi::PAM_SUCCESS
                && !item.is_null()
                && std::ffi::CStr::from_ptr(item.cast()) == c_name.as_c_str();
            if !same {
                status = ffi::PAM_PERM_DENIED;
            }
        }
        ffi::pam_end(pamh, status);
        status
    };
    classify(status)
}

/// A PAM status as pop1d answers it.
fn classify(status: c_int) -> Result<bool, Unverifiable> {
    match status {
        ffi::PAM_SUCCESS => Ok(true),
        ffi::PAM_AUTH_ERR
        | ffi::PAM_USER_UNKNOWN
        | ffi::PAM_PERM_DENIED
        | ffi::PAM_CRED_INSUFFICIENT
        | ffi::PAM_MAXTRIES
        | ffi::PAM_NEW_AUTHTOK_REQD
        | ffi::PAM_ACCT_EXPIRED
        | ffi::PAM_AUTHTOK_EXPIRED => Ok(false),
        ffi::PAM_BUF_ERR => Err(Unverifiable("PAM: out of memory")),
        _ => Err(Unverifiable(
            "PAM could not verify the password (a module's or the service's fault)",
        )),
    }
}

/// The `PAM_FAIL_DELAY` callback: no delay. pop1d's monitor owns the delay
/// after a failure (`--auth-delay`); pam_unix's own would stack on it.
unsafe extern "C" fn no_fail_delay(_status: c_int, _usec: c_uint, _appdata: *mut c_void) {}

/// The conversation: every `PAM_PROMPT_ECHO_OFF` prompt is answered with the
/// password, informational messages with nothing, anything else (an echoed
/// prompt, a binary one) is refused.
///
/// # Safety
/// As libpam calls it: `msg` points at `num_msg` valid message pointers,
/// `resp` is writable, and `appdata` is the `Secret` given to pam_start, alive.
unsafe extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const ffi::PamMessage,
    resp: *mut *mut ffi::PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if !(1..=ffi::PAM_MAX_NUM_MSG).contains(&num_msg)
        || msg.is_null()
        || resp.is_null()
        || appdata.is_null()
    {
        return ffi::PAM_CONV_ERR;
    }
    let count = num_msg as usize;
    // SAFETY: `appdata` is the `Secret` passed to pam_start, alive for the
    // whole transaction; its pointer and length describe `phrase`.
    let secret = unsafe { &*appdata.cast::<Secret>() };
    // SAFETY: calloc of `count` zeroed responses (NULL `resp` pointers): the
    // array libpam frees with free(3), as the PAM API requires.
    let replies: *mut ffi::PamResponse =
        unsafe { libc::calloc(count, std::mem::size_of::<ffi::PamResponse>()) }.cast();
    if replies.is_null() {
        return ffi::PAM_CONV_ERR;
    }
    for i in 0..count {
        // SAFETY: `i < num_msg`, so `msg.add(i)` is one of the message
        // pointers libpam passed (Linux-PAM's array of pointers).
        let message = unsafe { *msg.add(i) };
        // SAFETY: a non-NULL message pointer points at a valid `pam_message`.
        let style = (!message.is_null()).then(|| unsafe { (*message).msg_style });
        let answer = match style {
            Some(ffi::PAM_PROMPT_ECHO_OFF) => {
                // SAFETY: a zeroed buffer one byte longer than the password,
                // for libpam to free(3); the password is copied into it from
                // `secret`, whose pointer and length are valid (see above),
                // and the last byte stays NUL.
                let copy: *mut u8 = unsafe { libc::calloc(secret.len + 1, 1) }.cast();
                if copy.is_null() {
                    // SAFETY: `replies` holds `count` responses from calloc.
                    unsafe { free_replies(replies, count) };
                    return ffi::PAM_CONV_ERR;
                }
                // SAFETY: see the allocation above: `secret.len` bytes fit.
                unsafe { std::ptr::copy_nonoverlapping(secret.ptr, copy, secret.len) };
                copy.cast::<c_char>()
            }
            Some(ffi::PAM_ERROR_MSG | ffi::PAM_TEXT_INFO) => std::ptr::null_mut(),
            _ => {
                // SAFETY: `replies` holds `count` responses from calloc.
                unsafe { free_replies(replies, count) };
                return ffi::PAM_CONV_ERR;
            }
        };
        // SAFETY: `i < count`: inside the calloc'ed array.
        unsafe { (*replies.add(i)).resp = answer };
    }
    // SAFETY: `resp` is writable (checked non-NULL); libpam takes the array.
    unsafe { *resp = replies };
    ffi::PAM_SUCCESS
}

/// Wipe and free the responses made so far, and the array.
///
/// # Safety
/// `replies` is a calloc'ed array of `count` responses, each `resp` NULL or a
/// calloc'ed NUL-terminated string, none of them freed yet.
unsafe fn free_replies(replies: *mut ffi::PamResponse, count: usize) {
    for i in 0..count {
        // SAFETY: `i < count`: inside the array.
        let text = unsafe { (*replies.add(i)).resp };
        if !text.is_null() {
            // SAFETY: a NUL-terminated string of ours, wiped then freed once.
            unsafe {
                let len = libc::strlen(text);
                std::slice::from_raw_parts_mut(text.cast::<u8>(), len).zeroize();
                libc::free(text.cast());
            }
        }
    }
    // SAFETY: the calloc'ed array itself, freed once.
    unsafe { libc::free(replies.cast()) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn plans_run_pam_for_every_account_and_the_dummy_when_pam_hashes_nothing() {
        let plan = |user, uid, password: &[u8]| Plan::new(user, uid, password, 1000);
        let run = |pam, dummy, eligible| Plan {
            pam,
            dummy,
            eligible,
        };
        let cases = [
            (
                plan(Some("fred"), Some(1000), b"pw"),
                run(true, false, true),
            ),
            (plan(Some("fred"), Some(1000), b""), run(true, false, false)),
            (
                plan(Some("fred"), Some(1000), b"p\0w"),
                run(true, false, false),
            ),
            (plan(Some("root"), Some(0), b"pw"), run(true, false, false)),
            (
                plan(Some("daemon"), Some(999), b"pw"),
                run(true, false, false),
            ),
            (plan(Some("ghost"), None, b"pw"), run(true, true, false)),
            (plan(None, None, b"pw"), run(false, true, false)),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        assert!(Plan::new(Some("root"), Some(0), b"pw", 0) == run(true, false, false));
    }

    #[test]
    fn settling_runs_every_step_and_trusts_pam_only_when_eligible() {
        for pam in [false, true] {
            for dummy in [false, true] {
                for eligible in [false, true] {
                    for pam_says in [Ok(true), Ok(false), Err(Unverifiable("pam"))] {
                        let (pam_calls, dummy_calls) = (Cell::new(0), Cell::new(0));
                        let plan = Plan {
                            pam,
                            dummy,
                            eligible,
                        };
                        let got = plan.settle(
                            || {
                                pam_calls.set(pam_calls.get() + 1);
                                pam_says
                            },
                            || {
                                dummy_calls.set(dummy_calls.get() + 1);
                                Ok(false)
                            },
                        );
                        assert_eq!(pam_calls.get(), usize::from(pam));
                        assert_eq!(dummy_calls.get(), usize::from(dummy));
                        let want = if pam { pam_says } else { Ok(false) }.map(|ok| ok && eligible);
                        assert_eq!(got, want, "{plan:?} {pam_says:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(classify(ffi::PAM_SUCCESS), Ok(true));
        for refused in [7, 10, 6, 8, 11, 12, 13, 27] {
            assert_eq!(classify(refused), Ok(false), "{refused}");
        }
        for fault in [1, 2, 3, 4, 5, 9, 19, 26, 28] {
            assert!(classify(fault).is_err(), "{fault}");
        }
    }

    #[test]
    fn the_conversation_answers_hidden_prompts_with_the_password() {
        let password = b"s3cret";
        let secret = Secret {
            ptr: password.as_ptr(),
            len: password.len(),
        };
        let appdata = std::ptr::from_ref(&secret).cast_mut().cast();
        let message = |style| ffi::PamMessage {
            msg_style: style,
            msg: c"Password: ".as_ptr(),
        };
        let messages = [
            message(ffi::PAM_TEXT_INFO),
            message(ffi::PAM_PROMPT_ECHO_OFF),
        ];
        let mut pointers: Vec<*const ffi::PamMessage> =
            messages.iter().map(std::ptr::from_ref).collect();
        let mut replies: *mut ffi::PamResponse = std::ptr::null_mut();
        // SAFETY: as libpam would call it: two valid messages, a writable
        // reply pointer and a live `Secret`.
        let status = unsafe { converse(2, pointers.as_mut_ptr(), &mut replies, appdata) };
        assert_eq!(status, ffi::PAM_SUCCESS);
        // SAFETY: on success `replies` is a calloc'ed array of two responses.
        unsafe {
            assert!((*replies).resp.is_null());
            let answer = CStr::from_ptr((*replies.add(1)).resp);
            assert_eq!(answer.to_bytes(), password);
            free_replies(replies, 2);
        }
        // An echoed prompt (a user name) is not answered.
        let echo_on = [message(2)];
        let mut pointers: Vec<*const ffi::PamMessage> =
            echo_on.iter().map(std::ptr::from_ref).collect();
        let mut replies: *mut ffi::PamResponse = std::ptr::null_mut();
        // SAFETY: as above, with one message.
        let status = unsafe { converse(1, pointers.as_mut_ptr(), &mut replies, appdata) };
        assert_eq!(status, ffi::PAM_CONV_ERR);
        assert!(replies.is_null());
        // SAFETY: as above; a count of 0 is refused before anything is read.
        let status = unsafe { converse(0, pointers.as_mut_ptr(), &mut replies, appdata) };
        assert_eq!(status, ffi::PAM_CONV_ERR);
    }

    #[test]
    fn no_name_and_unknown_names_are_refused() {
        let pam = Pam::new(1000);
        assert_eq!(pam.dummy.settings(), "$y$j9T");
        assert_eq!(pam.verify(None, b"pw", "192.0.2.1"), Ok(false));
    }
}
