// A standard OpenID Connect provider for the console's sign-in test: panva's oidc-provider
// (OpenID Certified), configured from the environment, with its development login form
// (any listed account name signs in; the password is not checked).
//
//   PORT=9000 REDIRECT_URI=http://127.0.0.1:8080/signin/oidc/callback \
//   ACCOUNTS='{"alice": {"email": "alice@example.test", "groups": ["disputes"]}}' node provider.js
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const accounts = JSON.parse(process.env.ACCOUNTS ?? '{}');

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: process.env.CLIENT_ID ?? 'recourse-console',
      client_secret: process.env.CLIENT_SECRET ?? 'a-test-secret-of-the-console-client',
      redirect_uris: [process.env.REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  // `groups` is a scope of its own, as with Okta or Keycloak; its claim comes from userinfo.
  claims: { openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups'] },
  findAccount: async (ctx, id) =>
    accounts[id] && { accountId: id, claims: async () => ({ sub: id, ...accounts[id] }) },
  pkce: { required: () => true },
  cookies: { keys: ['a-cookie-key-for-the-test-provider-only'] },
});
provider.proxy = false;

provider.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${port}`);
});
