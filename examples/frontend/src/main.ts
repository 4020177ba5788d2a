// The tutorial's frontend: sign up, sign in, see and edit the profile, list
// and revoke sessions, sign out. Everything goes through the client that
// `warden gen client` printed into ./lib/client.ts.
import "./style.css";
import Client, { ErrCode, Local, isAPIError, type auth, type profile, type sessions } from "./lib/client";

// The Warden server: VITE_WARDEN_URL (e.g. in .env.local), else `Local`, the
// base_url the client was generated with (http://localhost:4000 by default).
const target = import.meta.env.VITE_WARDEN_URL ?? Local;

// As in the tutorial: the session token is kept in localStorage and sent as
// `Authorization: Bearer <token>` on every request.
const TOKEN_KEY = "authToken";

const publicClient = new Client(target);

function authedClient(): Client {
  const token = localStorage.getItem(TOKEN_KEY);
  if (!token) throw new Error("not signed in");
  return new Client(target, { auth: { authorization: `Bearer ${token}` } });
}

// ------------------------------------------------------------------ the page

function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from index.html`);
  return found as T;
}

const signedOut = el("signed-out");
const signedIn = el("signed-in");
const message = el("message");
const errorBox = el("error");
const signUpForm = el<HTMLFormElement>("sign-up");
const signInForm = el<HTMLFormElement>("sign-in");
const twoFactorForm = el<HTMLFormElement>("two-factor");
const sessionList = el<HTMLUListElement>("sessions");

function say(text: string): void {
  message.textContent = text;
  message.hidden = text === "";
}

function showError(err: unknown): void {
  // An APIError carries Warden's {code, message}: "password: must be at
  // least 8 characters" (invalid_argument), "email already registered"
  // (already_exists), ...
  errorBox.textContent = isAPIError(err) ? `${err.message} (${err.code})` : String(err);
  errorBox.hidden = false;
}

/** A form's text field. */
function field(form: HTMLFormElement, name: string): string {
  return String(new FormData(form).get(name) ?? "");
}

/** Wraps a UI action: clears the last message and shows the next error. */
function action<E extends Event>(run: (event: E) => Promise<void>): (event: E) => void {
  return (event) => {
    event.preventDefault();
    errorBox.hidden = true;
    say("");
    run(event).catch((err: unknown) => {
      if (isAPIError(err) && err.code === ErrCode.Unauthenticated && localStorage.getItem(TOKEN_KEY)) {
        // The session ended elsewhere (revoked, expired, password reset).
        localStorage.removeItem(TOKEN_KEY);
        showSignedOut();
        say("Your session has ended; sign in again.");
        return;
      }
      showError(err);
    });
  };
}

// ----------------------------------------------------------------- the views

function showSignedOut(twoFactorStep = false): void {
  signedIn.hidden = true;
  signedOut.hidden = false;
  signUpForm.hidden = twoFactorStep;
  signInForm.hidden = twoFactorStep;
  twoFactorForm.hidden = !twoFactorStep;
  sessionList.replaceChildren();
}

async function showSignedIn(): Promise<void> {
  const client = authedClient();
  const [me, list] = await Promise.all([client.profile.getProfile(), client.sessions.listSessions()]);
  renderProfile(me);
  renderSessions(list.sessions);
  signedOut.hidden = true;
  signedIn.hidden = false;
}

function renderProfile(me: profile.UserProfile): void {
  el("profile-name").textContent = me.name;
  el("profile-email").textContent = me.email;
  el<HTMLInputElement>("edit-name").value = me.name;
}

function renderSessions(list: sessions.SessionSummary[]): void {
  sessionList.replaceChildren(
    ...list.map((s) => {
      const item = document.createElement("li");
      item.dataset.sessionId = s.id;
      const since = new Date(s.createdAt).toLocaleString();
      item.textContent = `${s.userAgent ?? "unknown client"} from ${s.ipAddress ?? "an unknown address"}, since ${since}`;
      if (s.current) {
        item.classList.add("current");
        item.append(" (this session)");
      } else {
        const revoke = document.createElement("button");
        revoke.type = "button";
        revoke.textContent = "Revoke";
        revoke.dataset.revoke = s.id;
        item.append(" ", revoke);
      }
      return item;
    }),
  );
}

/** After sign-up, sign-in or a two-factor code: keep the token, or explain why there is none. */
async function start(res: auth.AuthResponse): Promise<void> {
  if (!res.session) {
    // `session` is null when the server requires email verification: a link
    // was mailed, and signing in works once it has been followed.
    say(`Almost there: follow the link sent to ${res.user.email} to verify your email, then sign in.`);
    return;
  }
  localStorage.setItem(TOKEN_KEY, res.session.token);
  await showSignedIn();
}

// ------------------------------------------------------------------- actions

let challenge: string | null = null;

signUpForm.addEventListener(
  "submit",
  action(async (event) => {
    const form = event.currentTarget as HTMLFormElement;
    const res = await publicClient.auth.signUp({
      name: field(form, "name"),
      email: field(form, "email"),
      password: field(form, "password"),
    });
    form.reset();
    await start(res);
  }),
);

signInForm.addEventListener(
  "submit",
  action(async (event) => {
    const form = event.currentTarget as HTMLFormElement;
    const res = await publicClient.auth.signIn({ email: field(form, "email"), password: field(form, "password") });
    form.reset();
    if ("twoFactorRequired" in res) {
      // No session yet: the account has two-factor on.
      challenge = res.challenge;
      showSignedOut(true);
      say("Enter the code from your authenticator app.");
      return;
    }
    await start(res);
  }),
);

twoFactorForm.addEventListener(
  "submit",
  action(async () => {
    const res = await publicClient.twoFactor.verifyTotp({ code: field(twoFactorForm, "code"), challenge });
    twoFactorForm.reset();
    challenge = null;
    await start(res);
  }),
);

el<HTMLFormElement>("edit-profile").addEventListener(
  "submit",
  action(async (event) => {
    const form = event.currentTarget as HTMLFormElement;
    renderProfile(await authedClient().profile.updateProfile({ name: field(form, "name") }));
    say("Profile saved.");
  }),
);

el("refresh-sessions").addEventListener(
  "click",
  action(async () => renderSessions((await authedClient().sessions.listSessions()).sessions)),
);

sessionList.addEventListener(
  "click",
  action(async (event) => {
    const id = (event.target as HTMLElement).closest<HTMLElement>("[data-revoke]")?.dataset.revoke;
    if (!id) return;
    const client = authedClient();
    await client.sessions.revokeSession(id);
    renderSessions((await client.sessions.listSessions()).sessions);
    say("Session revoked.");
  }),
);

el("sign-out").addEventListener(
  "click",
  action(async () => {
    try {
      await authedClient().auth.signOut();
    } finally {
      localStorage.removeItem(TOKEN_KEY);
      showSignedOut();
    }
    say("Signed out.");
  }),
);

// ----------------------------------------------------------------- start-up

if (localStorage.getItem(TOKEN_KEY)) {
  // A reload keeps the session: the token is still in localStorage.
  action(async () => {
    await showSignedIn().catch((err: unknown) => {
      showSignedOut();
      throw err;
    });
  })(new Event("load"));
} else {
  showSignedOut();
}
