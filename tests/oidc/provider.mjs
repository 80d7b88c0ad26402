// The identity provider of the console's sign-in tests: oidc-provider (OpenID Certified), with
// one confidential client (veredito's console), people whose `roles` claim names their veredito
// roles, and the package's own login and consent pages (devInteractions), filled in by the
// browser test. Any password is accepted; an unknown login signs in but gets no ID token.
//
// Environment: PORT, ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return value;
};

const port = Number(env('PORT'));
const issuer = env('ISSUER');

// The people: `roles` is the claim veredito's console maps to its roles.
const people = {
  'ana.souza': { name: 'Ana Souza', roles: ['veredito-reviewer', 'veredito-pii'] },
  'bruno.lima': { name: 'Bruno Lima', roles: ['veredito-auditor'] },
  'davi.rocha': { name: 'Davi Rocha', roles: ['veredito-reviewer'] },
  'carla.dias': { name: 'Carla Dias', roles: ['staff'] },
};

// A signing key of this run only.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-1', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('CLIENT_ID'),
    client_secret: env('CLIENT_SECRET'),
    redirect_uris: [env('REDIRECT_URI')],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: ['veredito-test-provider-cookie-key'] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    roles: ['roles'],
  },
  scopes: ['openid', 'profile', 'roles'],
  // The claims of the requested scopes go into the ID token too, as most providers' defaults do.
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const person = people[id];
    if (!person) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: person.name, preferred_username: id, roles: person.roles };
      },
    };
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`identity provider at ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
