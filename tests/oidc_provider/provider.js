// A real OpenID Connect provider for tests/test_oidc_sign_in.py: panva's oidc-provider (an OpenID Certified
// implementation), configured for one client (the app under test) and one account.
//
//   node provider.js   with PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, ACCOUNT and ACCOUNT_EMAIL in the environment
//
// It serves the issuer http://127.0.0.1:PORT and prints "listening on ISSUER" once it accepts connections.
// Sign-in uses the package's development interactions (a login form and a consent form); they accept the
// account's login with any password, which is what a test needs and why this file is never served to anyone.
//
// Why oidc-provider 8.8 and not 9: 9 is written for Node.js 22 (it warns on 20 and fails on 18, lacking
// URL.parse and crypto.hash), and a machine without Node.js gets Debian 12's 18 from scripts/test_provider.sh.
// 8.8 (the previous major, last released 2025-10) runs on both without complaint (tried: 18.20.4, 20.20.2).
import Provider from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.js needs ${name} in the environment`);
    process.exit(2);
  }
  return value;
};

const port = Number(env('PORT'));
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = env('REDIRECT_URI');
const account = env('ACCOUNT');
const accountClaims = { email: env('ACCOUNT_EMAIL'), email_verified: true, name: account };

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('CLIENT_ID'),
    client_secret: env('CLIENT_SECRET'),
    redirect_uris: [redirectUri],
    // Streamlit's st.logout() sends the browser to the provider's end_session_endpoint and asks to come back
    // to its redirect URI.
    post_logout_redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Streamlit reads the identity from the ID token only (it does not call the userinfo endpoint), as
  // Keycloak, Entra ID and Authentik send it: put the granted scopes' claims into the ID token too.
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    if (id !== account) return undefined; // only the test account signs in
    return { accountId: id, async claims() { return { sub: id, ...accountClaims }; } };
  },
  // Fixed keys for the provider's own cookies: a throwaway provider, restarted for every test run.
  cookies: { keys: ['dapt-test-provider-cookie-key'] },
});
// Why a sign-in failed, for the test's provider.log (the browser and the app only see an error code)
for (const event of ['authorization.error', 'grant.error', 'end_session.error', 'server_error']) {
  provider.on(event, (ctx, error) => console.error(`${event}: ${error.message} ${error.error_detail ?? ''}`));
}

provider.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${issuer} (oidc-provider on Node.js ${process.version})`);
});
