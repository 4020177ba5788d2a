// #/signin: an admin signs in to the dashboard (production).

import {h, replace} from './dom.js';
import {api} from './api.js';

export function render(ctx) {
  const email = h('input', {id: 'signin-email', type: 'email', autocomplete: 'username', required: true, placeholder: 'admin@example.com'});
  const password = h('input', {id: 'signin-password', type: 'password', autocomplete: 'current-password', required: true});
  const code = h('input', {id: 'signin-code', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9 ]*', maxlength: '10', placeholder: '123456', hidden: true});
  const codeLabel = h('label', {for: 'signin-code', hidden: true}, 'Two-factor code');
  const hint = h('p', {class: 'muted small', id: 'signin-hint', hidden: true}, 'Two-factor is on for this account: enter the code from your authenticator app.');
  const submit = h('button', {type: 'submit', id: 'signin-submit', class: 'btn btn-primary'}, 'Sign in');
  const error = h('div', {id: 'signin-error', class: 'note note-error', hidden: true, role: 'alert'});
  const form = h('form', {class: 'signin-form', autocomplete: 'on'},
    h('label', {for: 'signin-email'}, 'Email'), email,
    h('label', {for: 'signin-password'}, 'Password'), password,
    codeLabel, code, hint,
    error,
    submit);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    const body = {email: email.value.trim(), password: password.value};
    if (!code.hidden && code.value.trim()) body.code = code.value.replace(/\s+/g, '');
    try {
      const r = await api('POST', '/api/session', body, {noRedirect: true});
      await ctx.signedIn(r && r.user);
    } catch (err) {
      if (err.code === 'two_factor_required') {
        const first = code.hidden;
        code.hidden = codeLabel.hidden = hint.hidden = false;
        code.focus();
        if (!first) {
          error.textContent = err.message || 'Enter the code from your authenticator app.';
          error.hidden = false;
        }
      } else {
        error.textContent = err.code === 'not_admin'
          ? (err.message || 'This account is not an administrator.')
          : (err.message || 'Sign-in failed.');
        error.hidden = false;
      }
    } finally {
      submit.disabled = false;
    }
  });

  replace(ctx.root, h('div', {id: 'signin', class: 'view signin-view'},
    h('section', {class: 'panel signin-panel'},
      h('h1', null, 'Sign in'),
      h('p', {class: 'muted small'},
        ctx.me && ctx.me.mode === 'development'
          ? 'Development mode needs no sign-in; this form is here for production.'
          : 'The dashboard is for administrators. Sign in with an admin account.'),
      form)));
  email.focus();
}
