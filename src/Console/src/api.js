// Every AWS API the console calls, at the same origin that served it, each in its own wire protocol,
// signed with SigV4 in the browser by aws4fetch. The key pair lives in sessionStorage only: it is gone
// when the tab closes, and sign-out removes it at once.
import { AwsClient } from 'aws4fetch';

const STORAGE_KEY = 'ecs-console-credentials';

/** An error as the API worded it: its code (`__type` or the XML `Code`) and its message. */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
  toString() { return this.message ? `${this.code}: ${this.message}` : this.code; }
}

// Each service's JSON target prefix, protocol version and SigV4 signing name (botocore's models).
const SERVICES = {
  ecs: { prefix: 'AmazonEC2ContainerServiceV20141113', version: '1.1', signingName: 'ecs' },
  autoscaling: { prefix: 'AnyScaleFrontendService', version: '1.1', signingName: 'application-autoscaling' },
  cloudwatch: { prefix: 'GraniteServiceVersion20100801', version: '1.0', signingName: 'monitoring' },
  logs: { prefix: 'Logs_20140328', version: '1.1', signingName: 'logs' },
  secrets: { prefix: 'secretsmanager', version: '1.1', signingName: 'secretsmanager' },
  ssm: { prefix: 'AmazonSSM', version: '1.1', signingName: 'ssm' },
};

/** Counts the requests the console sends, for the benchmark and for the status line. */
export const stats = { requests: 0, byAction: {} };

export function savedCredentials() {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function saveCredentials(credentials) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
}

export function forgetCredentials() {
  sessionStorage.removeItem(STORAGE_KEY);
}

export class Api {
  constructor({ accessKeyId, secretAccessKey, region }) {
    this.region = region;
    this.endpoint = `${location.origin}/`;
    this.clients = new Map();
    this.credentials = { accessKeyId, secretAccessKey };
  }

  client(signingName) {
    let client = this.clients.get(signingName);
    if (!client) {
      client = new AwsClient({ ...this.credentials, region: this.region, service: signingName, retries: 0 });
      this.clients.set(signingName, client);
    }
    return client;
  }

  /** One AWS JSON call: `api.call('ecs', 'DescribeServices', {...})`. */
  async call(service, action, body = {}) {
    const { prefix, version, signingName } = SERVICES[service];
    count(`${service}.${action}`);
    const response = await this.client(signingName).fetch(this.endpoint, {
      method: 'POST',
      headers: { 'Content-Type': `application/x-amz-json-${version}`, 'X-Amz-Target': `${prefix}.${action}` },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    let json = {};
    try { json = text ? JSON.parse(text) : {}; } catch { /* not JSON: reported below */ }
    if (!response.ok) {
      const type = String(json.__type ?? json.code ?? response.headers.get('x-amzn-ErrorType') ?? `HTTP ${response.status}`);
      throw new ApiError(type.slice(type.lastIndexOf('#') + 1).split(':')[0], json.message ?? json.Message ?? '', response.status);
    }
    return json;
  }

  /** One ELBv2 query-protocol call; answers the parsed XML document. */
  async elb(action, params = {}) {
    count(`elbv2.${action}`);
    const form = new URLSearchParams({ Action: action, Version: '2015-12-01', ...params });
    const response = await this.client('elasticloadbalancing').fetch(this.endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: form.toString(),
    });
    const xml = new DOMParser().parseFromString(await response.text(), 'application/xml');
    if (!response.ok) {
      throw new ApiError(text(xml, 'Code') || `HTTP ${response.status}`, text(xml, 'Message'), response.status);
    }
    return xml;
  }

  /** Describe calls take at most `size` names at once; several are sent together. */
  async batched(names, size, describe) {
    const chunks = [];
    for (let i = 0; i < names.length; i += size) chunks.push(names.slice(i, i + size));
    return (await Promise.all(chunks.map(describe))).flat();
  }
}

export function text(node, tag) {
  return node.getElementsByTagName(tag)[0]?.textContent ?? '';
}

function count(action) {
  stats.requests += 1;
  stats.byAction[action] = (stats.byAction[action] ?? 0) + 1;
}
