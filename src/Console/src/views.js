// The console's views. Each one is `(ctx) => ({ title, node, refresh })`: `node` is built once (forms and
// inputs keep their state), `refresh()` reads the API once for the whole view (Describe calls batched) and
// replaces only the live parts. `ctx` has the signed `api`, the route's `params`, `act(label, fn)` to run
// an action and show the API's error, and `go(hash)`.
import { h, table, section, status, time, shortArn, bar, chart, confirmDialog } from './dom.js';
import { text } from './api.js';

const enc = encodeURIComponent;
const link = (hash, label) => h('a', { href: hash }, label);
const live = (label) => h('div', { class: 'live', 'aria-live': 'polite', 'aria-label': label });
const replace = (node, ...children) => { node.replaceChildren(...children.flat().filter((c) => c !== undefined && c !== null && c !== false)); };
const resource = (arr, name) => (arr ?? []).find((r) => r.name === name)?.integerValue ?? 0;
const taskId = (arn) => shortArn(arn);
// One term and its value, grouped so the grid keeps them together.
const fact = (term, attributes, ...value) => h('div', {}, h('dt', {}, term), h('dd', attributes, ...value));

/** Every page of a List call (ECS caps a page at 100). */
async function listAll(api, service, action, body, key) {
  const all = [];
  let nextToken;
  do {
    const page = await api.call(service, action, { ...body, ...(nextToken ? { nextToken } : {}) });
    all.push(...(page[key] ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return all;
}

async function describeTasks(api, cluster, arns) {
  return api.batched(arns, 100, async (tasks) => (await api.call('ecs', 'DescribeTasks', { cluster, tasks })).tasks ?? []);
}

/** CloudWatch GetMetricData for several series at once (500 queries a call); answers {id: [[ms, value]...]}. */
async function metrics(api, queries, minutes = 60) {
  const end = Math.floor(Date.now() / 1000);
  const answers = await api.batched(queries, 500, async (chunk) => [await api.call('cloudwatch', 'GetMetricData', {
    StartTime: end - minutes * 60,
    EndTime: end,
    MetricDataQueries: chunk.map(({ id, namespace = 'AWS/ECS', metric, dimensions, stat = 'Average', period = 60 }) => ({
      Id: id,
      MetricStat: { Metric: { Namespace: namespace, MetricName: metric, Dimensions: Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value })) }, Period: period, Stat: stat },
    })),
  })]);
  const out = {};
  for (const r of answers.flatMap((a) => a.MetricDataResults ?? [])) {
    out[r.Id] = (r.Timestamps ?? []).map((t, i) => [typeof t === 'number' ? t * 1000 : Date.parse(t), r.Values[i]]).sort((a, b) => a[0] - b[0]);
  }
  return out;
}

function taskRows(ctx, cluster, tasks, { stop = false } = {}) {
  return tasks
    .sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)))
    .map((t) => [
      link(`#/clusters/${enc(cluster)}/tasks/${enc(taskId(t.taskArn))}`, taskId(t.taskArn)),
      status(t.lastStatus), status(t.desiredStatus), status(t.healthStatus),
      shortArn(t.taskDefinitionArn), t.group ?? '', time(t.startedAt),
      ...(stop ? [t.desiredStatus !== 'STOPPED'
        ? h('button', { type: 'button', class: 'small danger', 'aria-label': `Stop task ${taskId(t.taskArn)}`, onclick: () => stopTask(ctx, cluster, t.taskArn) }, 'Stop')
        : ''] : []),
    ]);
}

async function stopTask(ctx, cluster, arn) {
  if (!await confirmDialog(`Stop task ${taskId(arn)}? Its containers are stopped; a service starts a replacement.`, 'Stop task')) return;
  await ctx.act('Stop task', () => ctx.api.call('ecs', 'StopTask', { cluster, task: arn, reason: 'Stopped from the console' }));
}

// ---- clusters -------------------------------------------------------------------------------------

export function clusters(ctx) {
  const body = live('Clusters');
  return {
    title: 'Clusters',
    crumbs: [],
    node: section('All clusters', body),
    async refresh() {
      const arns = await listAll(ctx.api, 'ecs', 'ListClusters', { maxResults: 100 }, 'clusterArns');
      const described = arns.length ? (await ctx.api.batched(arns, 100, async (c) => (await ctx.api.call('ecs', 'DescribeClusters', { clusters: c })).clusters ?? [])) : [];
      replace(body, table('Clusters', ['Cluster', 'Status', 'Services', 'Running tasks', 'Pending tasks', 'Container instances'],
        described.sort((a, b) => a.clusterName.localeCompare(b.clusterName)).map((c) => [
          link(`#/clusters/${enc(c.clusterName)}`, c.clusterName), status(c.status), c.activeServicesCount,
          c.runningTasksCount, c.pendingTasksCount, c.registeredContainerInstancesCount]), 'No clusters.'));
    },
  };
}

export function cluster(ctx) {
  const name = ctx.params.cluster;
  const summary = live('Cluster summary');
  const services = live('Services');
  const instances = live('Container instances');
  const tasks = live('Tasks');
  return {
    title: `Cluster ${name}`,
    crumbs: [['#/clusters', 'Clusters']],
    node: h('div', {}, summary, section('Services', services), section('Container instances', instances), section('Tasks', tasks)),
    async refresh() {
      const [clusterAnswer, serviceArns, instanceArns, taskArns] = await Promise.all([
        ctx.api.call('ecs', 'DescribeClusters', { clusters: [name] }),
        listAll(ctx.api, 'ecs', 'ListServices', { cluster: name, maxResults: 100 }, 'serviceArns'),
        listAll(ctx.api, 'ecs', 'ListContainerInstances', { cluster: name, maxResults: 100 }, 'containerInstanceArns'),
        listAll(ctx.api, 'ecs', 'ListTasks', { cluster: name, maxResults: 100 }, 'taskArns'),
      ]);
      const c = (clusterAnswer.clusters ?? [])[0];
      if (!c) {
        const failure = (clusterAnswer.failures ?? [])[0];
        throw Object.assign(new Error(failure ? `${failure.reason}: ${failure.arn}` : 'Cluster not found'), { code: 'ClusterNotFound' });
      }
      // The cluster's AWS/ECS metrics and, per container instance, Container Insights' instance metrics
      // (what its tasks use, a share of what it registered): one GetMetricData for all of them.
      const instanceQueries = instanceArns.flatMap((arn, n) => [
        { id: `icpu${n}`, namespace: 'ECS/ContainerInsights', metric: 'instance_cpu_utilization', dimensions: { ClusterName: name, ContainerInstanceId: shortArn(arn) } },
        { id: `imem${n}`, namespace: 'ECS/ContainerInsights', metric: 'instance_memory_utilization', dimensions: { ClusterName: name, ContainerInstanceId: shortArn(arn) } },
      ]);
      const [svcs, insts, tsks, usage] = await Promise.all([
        ctx.api.batched(serviceArns, 10, async (s) => (await ctx.api.call('ecs', 'DescribeServices', { cluster: name, services: s })).services ?? []),
        ctx.api.batched(instanceArns, 100, async (i) => (await ctx.api.call('ecs', 'DescribeContainerInstances', { cluster: name, containerInstances: i })).containerInstances ?? []),
        describeTasks(ctx.api, name, taskArns),
        metrics(ctx.api, [
          { id: 'cpu', metric: 'CPUUtilization', dimensions: { ClusterName: name } },
          { id: 'mem', metric: 'MemoryUtilization', dimensions: { ClusterName: name } },
          { id: 'cpuReserved', metric: 'CPUReservation', dimensions: { ClusterName: name } },
          { id: 'memReserved', metric: 'MemoryReservation', dimensions: { ClusterName: name } },
          ...instanceQueries,
        ], 10),
      ]);
      const used = new Map(instanceArns.map((arn, n) => [arn, { cpu: usage[`icpu${n}`], mem: usage[`imem${n}`] }]));
      const latest = (points) => (points?.length ? Math.round(points[points.length - 1][1] * 10) / 10 : 0);
      const last = (points) => (points?.length ? `${latest(points)}%` : 'no data');
      replace(summary, h('dl', { class: 'facts' },
        fact('Status', {}, status(c.status)),
        fact('Services', {}, c.activeServicesCount),
        fact('Running tasks', {}, c.runningTasksCount),
        fact('Pending tasks', {}, c.pendingTasksCount),
        fact('Container instances', {}, c.registeredContainerInstancesCount),
        fact('CPU used (cluster, last minute)', {}, last(usage.cpu)),
        fact('Memory used (cluster, last minute)', {}, last(usage.mem))),
        h('div', { class: 'card' }, h('h3', {}, 'Cluster capacity, % of what its instances registered (CloudWatch, last minute)'),
          bar('CPU', [{ name: 'used', value: latest(usage.cpu), kind: 'used' }, { name: 'reserved, unused', value: Math.max(0, Math.round((latest(usage.cpuReserved) - latest(usage.cpu)) * 10) / 10), kind: 'reserved' }], 100),
          bar('Memory', [{ name: 'used', value: latest(usage.mem), kind: 'used' }, { name: 'reserved, unused', value: Math.max(0, Math.round((latest(usage.memReserved) - latest(usage.mem)) * 10) / 10), kind: 'reserved' }], 100)));
      replace(services, table('Services', ['Service', 'Status', 'Running', 'Desired', 'Pending', 'Rollout', 'Task definition'],
        svcs.sort((a, b) => a.serviceName.localeCompare(b.serviceName)).map((s) => [
          link(`#/clusters/${enc(name)}/services/${enc(s.serviceName)}`, s.serviceName), status(s.status),
          s.runningCount, s.desiredCount, s.pendingCount,
          status((s.deployments ?? []).find((d) => d.status === 'PRIMARY')?.rolloutState), shortArn(s.taskDefinition)]), 'No services.'));
      replace(instances, insts.length === 0 ? h('p', { class: 'empty' }, 'No container instances.')
        : h('ul', { class: 'instances' }, insts.map((i) => instanceCard(ctx, name, i, used.get(i.containerInstanceArn)))));
      replace(tasks, table('Tasks', ['Task', 'Last status', 'Desired', 'Health', 'Task definition', 'Group', 'Started'], taskRows(ctx, name, tsks), 'No tasks.'));
    },
  };
}

// An instance's capacity bar: registered is the scale, reserved (from DescribeContainerInstances) and, when
// CloudWatch has a datapoint of the last minutes, used (its latest percent of registered) drawn over it.
function capacityBar(label, registered, reserved, usedPercent) {
  if (usedPercent === undefined) return bar(label, [{ name: 'reserved', value: reserved, kind: 'reserved' }], registered);
  const usedValue = Math.round((usedPercent * registered) / 100);
  return bar(label, [
    { name: 'used', value: usedValue, kind: 'used' },
    { name: 'reserved', value: reserved, kind: 'reserved', width: Math.max(0, reserved - usedValue) },
  ], registered);
}

function instanceCard(ctx, cluster, i, usage = {}) {
  const id = shortArn(i.containerInstanceArn);
  const cpu = resource(i.registeredResources, 'CPU'), mem = resource(i.registeredResources, 'MEMORY');
  const cpuReserved = cpu - resource(i.remainingResources, 'CPU'), memReserved = mem - resource(i.remainingResources, 'MEMORY');
  const latestOf = (points) => (points?.length ? points[points.length - 1][1] : undefined);
  const cpuUsed = latestOf(usage.cpu), memUsed = latestOf(usage.mem);
  const draining = i.status === 'DRAINING';
  return h('li', { class: 'card' },
    h('h3', {}, id),
    h('p', {}, status(i.status), ' ', i.agentConnected ? 'agent connected' : 'agent disconnected', ' · ', `${i.runningTasksCount} running, ${i.pendingTasksCount} pending`,
      i.ec2InstanceId ? ` · ${i.ec2InstanceId}` : ''),
    capacityBar('CPU units', cpu, cpuReserved, cpuUsed),
    capacityBar('Memory MiB', mem, memReserved, memUsed),
    cpuUsed === undefined && memUsed === undefined ? h('p', { class: 'hint' }, 'Used: no datapoint from this instance in the last 10 minutes yet.') : '',
    h('button', {
      type: 'button', class: draining ? 'small' : 'small danger', 'aria-label': `${draining ? 'Activate' : 'Drain'} instance ${id}`,
      onclick: async () => {
        if (!draining && !await confirmDialog(`Drain container instance ${id}? Its service tasks are replaced elsewhere and it gets no new tasks.`, 'Drain')) return;
        await ctx.act(draining ? 'Activate instance' : 'Drain instance', () => ctx.api.call('ecs', 'UpdateContainerInstancesState', { cluster, containerInstances: [i.containerInstanceArn], status: draining ? 'ACTIVE' : 'DRAINING' }));
      },
    }, draining ? 'Activate' : 'Drain'));
}

// ---- a service ----------------------------------------------------------------------------------

// Desired count, sampled at each refresh while the page is open: no API keeps its history (this control
// plane publishes no DesiredTaskCount metric). Running is rebuilt from the tasks' own start and stop times.
const countHistory = new Map();
// Stopped tasks never change again: described once, kept while ListTasks still lists them.
const stoppedTasks = new Map();
const HOUR_MS = 3600000;

/** The number of the service's tasks RUNNING at each change over the last hour, as steps [[ms, n]...]. */
export function runningSteps(tasks, now = Date.now(), since = now - HOUR_MS) {
  const ms = (v) => (v === undefined || v === null ? undefined : typeof v === 'number' ? (v < 1e12 ? v * 1000 : v) : Date.parse(v));
  const changes = [];
  for (const t of tasks) {
    const start = ms(t.startedAt);
    if (start === undefined) continue;
    const end = ms(t.stoppingAt) ?? ms(t.executionStoppedAt) ?? ms(t.stoppedAt);
    if (end !== undefined && end <= since) continue;
    changes.push([Math.max(start, since), 1]);
    if (end !== undefined) changes.push([end, -1]);
  }
  changes.sort((a, b) => a[0] - b[0]);
  const steps = [];
  let n = 0;
  for (let i = 0; i < changes.length;) {
    const t = changes[i][0];
    const before = n;
    while (i < changes.length && changes[i][0] === t) n += changes[i++][1];
    if (steps.length) steps.push([t, before]);
    steps.push([t, n]);
  }
  if (steps.length) steps.push([now, n]);
  return steps;
}

// A service deployment that is still moving: the ones DescribeServiceDeployments is asked about.
const MOVING = new Set(['PENDING', 'IN_PROGRESS', 'STOP_REQUESTED', 'ROLLBACK_REQUESTED', 'ROLLBACK_IN_PROGRESS']);

export function service(ctx) {
  const { cluster: clusterName, service: name } = ctx.params;
  const key = `${clusterName}/${name}`;
  const summary = live('Service summary');
  const deployments = live('Deployments');
  const serviceDeployments = live('Service deployments');
  const charts = live('Charts');
  const scaling = live('Auto scaling');
  const targets = live('Load balancer targets');
  const tasks = live('Tasks');
  const events = live('Events');
  const desired = h('input', { type: 'number', min: 0, max: 10000, id: 'desired-count', name: 'desiredCount', required: true, inputmode: 'numeric' });
  let desiredTouched = false;
  desired.addEventListener('input', () => { desiredTouched = true; });
  const actions = h('form', {
    class: 'actions-bar',
    'aria-label': 'Service actions',
    onsubmit: async (e) => {
      e.preventDefault();
      const count = Number(desired.value);
      await ctx.act('Update desired count', () => ctx.api.call('ecs', 'UpdateService', { cluster: clusterName, service: name, desiredCount: count }));
      desiredTouched = false;
    },
  },
  h('label', { for: 'desired-count' }, 'Desired count'), desired,
  h('button', { type: 'submit' }, 'Update desired count'),
  h('button', {
    type: 'button', class: 'danger',
    onclick: async () => {
      if (!await confirmDialog(`Force a new deployment of ${name}? Every task is replaced by a new one.`, 'Force new deployment')) return;
      await ctx.act('Force new deployment', () => ctx.api.call('ecs', 'UpdateService', { cluster: clusterName, service: name, forceNewDeployment: true }));
    },
  }, 'Force new deployment'));
  return {
    title: `Service ${name}`,
    crumbs: [['#/clusters', 'Clusters'], [`#/clusters/${enc(clusterName)}`, clusterName]],
    node: h('div', {}, summary, actions, section('Deployments', deployments), section('Service deployments', serviceDeployments),
      section('Tasks', tasks), section('Utilization and counts', charts),
      section('Auto scaling', scaling), section('Load balancer targets', targets), section('Events', events)),
    async refresh() {
      const resourceId = `service/${clusterName}/${name}`;
      const [described, taskArns, stoppedArns, deploymentList, usage, policies, activities] = await Promise.all([
        ctx.api.call('ecs', 'DescribeServices', { cluster: clusterName, services: [name] }),
        listAll(ctx.api, 'ecs', 'ListTasks', { cluster: clusterName, serviceName: name, maxResults: 100 }, 'taskArns'),
        listAll(ctx.api, 'ecs', 'ListTasks', { cluster: clusterName, serviceName: name, desiredStatus: 'STOPPED', maxResults: 100 }, 'taskArns'),
        ctx.api.call('ecs', 'ListServiceDeployments', { cluster: clusterName, service: name, maxResults: 10 }),
        metrics(ctx.api, [
          { id: 'cpu', metric: 'CPUUtilization', dimensions: { ClusterName: clusterName, ServiceName: name } },
          { id: 'mem', metric: 'MemoryUtilization', dimensions: { ClusterName: clusterName, ServiceName: name } },
        ]),
        ctx.api.call('autoscaling', 'DescribeScalingPolicies', { ServiceNamespace: 'ecs', ResourceId: resourceId }),
        ctx.api.call('autoscaling', 'DescribeScalingActivities', { ServiceNamespace: 'ecs', ResourceId: resourceId, MaxResults: 20 }),
      ]);
      const s = (described.services ?? [])[0];
      if (!s) {
        const failure = (described.failures ?? [])[0];
        throw Object.assign(new Error(failure ? `${failure.reason}: ${failure.arn}` : 'Service not found'), { code: 'ServiceNotFound' });
      }
      const targetGroups = [...new Set((s.loadBalancers ?? []).map((lb) => lb.targetGroupArn).filter(Boolean))];
      const briefs = deploymentList.serviceDeployments ?? [];
      const moving = briefs.filter((d) => MOVING.has(d.status)).map((d) => d.serviceDeploymentArn);
      const unseen = stoppedArns.filter((arn) => !stoppedTasks.has(arn));
      const [taskList, health, detailed, stopping] = await Promise.all([
        describeTasks(ctx.api, clusterName, taskArns),
        Promise.all(targetGroups.map(async (arn) => [arn, await ctx.api.elb('DescribeTargetHealth', { TargetGroupArn: arn })])),
        moving.length ? ctx.api.batched(moving, 20, async (a) => (await ctx.api.call('ecs', 'DescribeServiceDeployments', { serviceDeploymentArns: a })).serviceDeployments ?? []) : [],
        unseen.length ? describeTasks(ctx.api, clusterName, unseen) : [],
      ]);
      for (const t of stopping) if (t.lastStatus === 'STOPPED') stoppedTasks.set(t.taskArn, t);
      // Forget this service's stopped tasks that ListTasks no longer lists (ECS let them go after an hour).
      const listed = new Set(stoppedArns);
      for (const [arn, t] of stoppedTasks) if (t.group === `service:${name}` && t.clusterArn === s.clusterArn && !listed.has(arn)) stoppedTasks.delete(arn);
      const stopped = stoppedArns.map((arn) => stoppedTasks.get(arn) ?? stopping.find((t) => t.taskArn === arn)).filter(Boolean);
      const details = new Map(detailed.map((d) => [d.serviceDeploymentArn, d]));

      if (!desiredTouched && document.activeElement !== desired) desired.value = s.desiredCount;
      const history = countHistory.get(key) ?? [];
      history.push([Date.now(), s.desiredCount]);
      while (history.length > 2 && history[0][0] < Date.now() - HOUR_MS) history.shift();
      countHistory.set(key, history);
      const running = runningSteps([...taskList, ...stopped]);

      const primary = (s.deployments ?? []).find((d) => d.status === 'PRIMARY');
      replace(summary, h('dl', { class: 'facts' },
        fact('Status', {}, status(s.status)),
        fact('Running / desired', { id: 'running-desired' }, `${s.runningCount} / ${s.desiredCount}`),
        fact('Pending', {}, s.pendingCount),
        fact('Rollout', {}, status(primary?.rolloutState)),
        fact('Task definition', {}, taskDefinitionLink(s.taskDefinition)),
        fact('Launch type', {}, s.launchType ?? (s.capacityProviderStrategy ?? []).map((p) => p.capacityProvider).join(', ')),
        fact('Deployment controller', {}, s.deploymentController?.type ?? 'ECS'),
        fact('Deployment configuration', {}, deploymentConfig(s.deploymentConfiguration))));

      replace(deployments, table('Deployments', ['Deployment', 'Status', 'Rollout state', 'Task definition', 'Desired', 'Pending', 'Running', 'Failed', 'Created', 'Updated', 'Reason'],
        (s.deployments ?? []).map((d) => [
          shortArn(d.id), status(d.status), status(d.rolloutState), taskDefinitionLink(d.taskDefinition), d.desiredCount, d.pendingCount, d.runningCount,
          d.failedTasks ?? 0, time(d.createdAt), time(d.updatedAt), [d.rolloutStateReason, otherDeploymentFields(d)]]), 'No deployments.'));

      replace(serviceDeployments, table('Service deployments (ListServiceDeployments; the moving ones from DescribeServiceDeployments)',
        ['Service deployment', 'Status', 'Action', 'Paused hooks', 'Stage', 'Target revision: running / requested', 'Production traffic', 'Started', 'Finished', 'Reason'],
        briefs.map((b) => serviceDeploymentRow(ctx, b, details.get(b.serviceDeploymentArn))), 'No service deployments.'));

      replace(tasks, table('Tasks of the service', ['Task', 'Last status', 'Desired', 'Health', 'Task definition', 'Group', 'Started', 'Action'],
        taskRows(ctx, clusterName, taskList, { stop: true }), 'No tasks.'));

      replace(charts, h('div', { class: 'charts' },
        chart('Running (from its tasks\' start and stop times, last hour) vs desired (since this page opened)', [
          { name: 'running', points: running },
          { name: 'desired', points: history },
        ]),
        chart('CPU utilization, last hour (CloudWatch)', [{ name: 'CPU %', points: usage.cpu ?? [] }], { unit: '%' }),
        chart('Memory utilization, last hour (CloudWatch)', [{ name: 'memory %', points: usage.mem ?? [] }], { unit: '%' })));

      replace(scaling,
        table('Scaling policies', ['Policy', 'Type', 'Configuration', 'Alarms'], (policies.ScalingPolicies ?? []).map((p) => [
          p.PolicyName, p.PolicyType, h('code', {}, JSON.stringify(p.TargetTrackingScalingPolicyConfiguration ?? p.StepScalingPolicyConfiguration ?? {})),
          (p.Alarms ?? []).map((a) => a.AlarmName).join(', ')]), 'No scaling policies.'),
        table('Scaling activities', ['Started', 'Status', 'Description', 'Cause'], (activities.ScalingActivities ?? []).map((a) => [
          time(a.StartTime), status(a.StatusCode), a.Description, a.Cause]), 'No scaling activities.'));

      replace(targets, targetGroups.length === 0 ? h('p', { class: 'empty' }, 'The service has no load balancer.')
        : health.map(([arn, xml]) => table(`Targets of ${shortArn(arn)}`, ['Target', 'Port', 'State', 'Reason', 'Description'],
          [...xml.getElementsByTagName('member')].filter((m) => m.getElementsByTagName('Target').length).map((m) => [
            text(m, 'Id'), text(m, 'Port'), status(text(m, 'State')), text(m, 'Reason'), text(m, 'Description')]), 'No registered targets.')));

      replace(events, (s.events ?? []).length === 0 ? h('p', { class: 'empty' }, 'No events.')
        : h('ol', { class: 'timeline' }, (s.events ?? []).slice(0, 50).map((e) => h('li', {}, time(e.createdAt), ' ', h('span', { class: 'event' }, e.message)))));
    },
  };
}

function serviceDeploymentRow(ctx, b, d) {
  const arn = b.serviceDeploymentArn;
  const id = shortArn(arn);
  const target = d?.targetServiceRevision;
  const hooks = (d?.lifecycleHookDetails ?? []).filter((x) => x.status === 'AWAITING_ACTION');
  const canStop = d ? ['PENDING', 'IN_PROGRESS'].includes(d.status) : false;
  const hookCell = hooks.length === 0 ? '—' : hooks.map((hook) => h('div', { class: 'hook' },
    `${hook.hookId} at ${d.lifecycleStage}`, hook.expiresAt ? [' until ', time(hook.expiresAt)] : '', ' ',
    h('button', {
      type: 'button', class: 'small', 'aria-label': `Continue service deployment ${id} past hook ${hook.hookId}`,
      onclick: () => ctx.act('Continue deployment', () => ctx.api.call('ecs', 'ContinueServiceDeployment', { serviceDeploymentArn: arn, hookId: hook.hookId, action: 'CONTINUE' })),
    }, 'Continue'), ' ',
    h('button', {
      type: 'button', class: 'small danger', 'aria-label': `Roll back service deployment ${id} at hook ${hook.hookId}`,
      onclick: async () => {
        if (!await confirmDialog(`Roll back service deployment ${id}? Traffic returns to the previous revision and the new tasks are stopped.`, 'Roll back')) return;
        await ctx.act('Roll back deployment', () => ctx.api.call('ecs', 'ContinueServiceDeployment', { serviceDeploymentArn: arn, hookId: hook.hookId, action: 'ROLLBACK' }));
      },
    }, 'Roll back')));
  const stopCell = canStop ? h('button', {
    type: 'button', class: 'small danger', 'aria-label': `Roll back service deployment ${id}`,
    onclick: async () => {
      if (!await confirmDialog(`Roll back service deployment ${id}? ECS stops it and brings the last completed revision back (StopServiceDeployment, ROLLBACK).`, 'Roll back')) return;
      await ctx.act('Roll back deployment', () => ctx.api.call('ecs', 'StopServiceDeployment', { serviceDeploymentArn: arn, stopType: 'ROLLBACK' }));
    },
  }, 'Roll back') : '';
  return [
    id, status(b.status), stopCell, hookCell, d?.lifecycleStage ?? '—',
    target ? `${target.runningTaskCount ?? 0} / ${target.requestedTaskCount ?? 0}` : '—',
    target?.requestedProductionTrafficWeight !== undefined ? `${target.requestedProductionTrafficWeight}%` : '—',
    time(b.startedAt), time(b.finishedAt), b.statusReason ?? '',
  ];
}

function deploymentConfig(c) {
  if (!c) return '—';
  const parts = [`min ${c.minimumHealthyPercent ?? 100}%`, `max ${c.maximumPercent ?? 200}%`];
  if (c.deploymentCircuitBreaker?.enable) parts.push(`circuit breaker${c.deploymentCircuitBreaker.rollback ? ' with rollback' : ''}`);
  if (c.strategy) parts.push(`strategy ${c.strategy}`);
  if (c.bakeTimeInMinutes !== undefined) parts.push(`bake ${c.bakeTimeInMinutes} min`);
  if (c.lifecycleHooks?.length) parts.push(`hooks: ${c.lifecycleHooks.map((x) => (x.lifecycleStages ?? []).join('/')).join('; ')}`);
  return parts.join(', ');
}

// Fields of a deployment the table has no column for (a blue/green deployment's stage, for one), shown as they are.
const DEPLOYMENT_COLUMNS = new Set(['id', 'status', 'rolloutState', 'taskDefinition', 'desiredCount', 'pendingCount', 'runningCount', 'failedTasks', 'createdAt', 'updatedAt', 'rolloutStateReason', 'launchType', 'capacityProviderStrategy', 'networkConfiguration', 'platformVersion', 'platformFamily']);
function otherDeploymentFields(d) {
  const rest = Object.fromEntries(Object.entries(d).filter(([k]) => !DEPLOYMENT_COLUMNS.has(k)));
  return Object.keys(rest).length ? h('details', {}, h('summary', {}, 'more'), h('pre', {}, JSON.stringify(rest, null, 2))) : '';
}

function taskDefinitionLink(arn) {
  const id = shortArn(arn);
  const [family, revision] = id.split(':');
  return revision ? link(`#/task-definitions/${enc(family)}/${enc(revision)}`, id) : id;
}

// ---- a task -------------------------------------------------------------------------------------

const definitions = new Map();

export function task(ctx) {
  const { cluster: clusterName, task: id } = ctx.params;
  const summary = live('Task summary');
  const containers = live('Containers');
  const logLines = h('ol', { class: 'log', 'aria-label': 'Log lines', tabindex: 0 });
  const logInfo = h('p', { class: 'hint', 'aria-live': 'polite' });
  const containerSelect = h('select', { id: 'log-container' });
  const follow = h('input', { type: 'checkbox', id: 'log-follow', checked: true });
  const search = h('input', { type: 'search', id: 'log-search', placeholder: 'filter pattern, e.g. error or "refused by"' });
  const stopButton = h('button', {
    type: 'button', class: 'danger',
    onclick: async () => {
      if (!await confirmDialog(`Stop task ${id}?`, 'Stop task')) return;
      await ctx.act('Stop task', () => ctx.api.call('ecs', 'StopTask', { cluster: clusterName, task: id, reason: 'Stopped from the console' }));
    },
  }, 'Stop task');
  let logTargets = [];
  let stream = null; // { group, name, nextToken, container }
  let searching = null; // filter pattern shown instead of the followed stream

  const logForm = h('form', {
    class: 'log-controls', 'aria-label': 'Log search',
    onsubmit: async (e) => {
      e.preventDefault();
      searching = search.value.trim() || null;
      await ctx.refreshNow();
    },
  },
  h('label', { for: 'log-container' }, 'Container'), containerSelect,
  h('label', { class: 'check' }, follow, ' Follow'),
  h('label', { for: 'log-search' }, 'Search'), search,
  h('button', { type: 'submit' }, 'Search'),
  h('button', { type: 'button', onclick: async () => { search.value = ''; searching = null; stream = null; replace(logLines); await ctx.refreshNow(); } }, 'Clear'));
  containerSelect.addEventListener('change', async () => { stream = null; replace(logLines); await ctx.refreshNow(); });

  return {
    title: `Task ${id}`,
    crumbs: [['#/clusters', 'Clusters'], [`#/clusters/${enc(clusterName)}`, clusterName]],
    node: h('div', {}, summary, h('div', { class: 'actions-bar' }, stopButton), section('Containers', containers),
      section('Logs', logForm, logInfo, h('div', { class: 'log-box' }, logLines))),
    async refresh() {
      const described = await ctx.api.call('ecs', 'DescribeTasks', { cluster: clusterName, tasks: [id] });
      const t = (described.tasks ?? [])[0];
      if (!t) {
        const failure = (described.failures ?? [])[0];
        throw Object.assign(new Error(failure ? `${failure.reason}: ${failure.arn}` : 'Task not found'), { code: 'TaskNotFound' });
      }
      let definition = definitions.get(t.taskDefinitionArn);
      if (!definition) {
        definition = (await ctx.api.call('ecs', 'DescribeTaskDefinition', { taskDefinition: t.taskDefinitionArn })).taskDefinition;
        definitions.set(t.taskDefinitionArn, definition);
      }
      stopButton.disabled = t.desiredStatus === 'STOPPED';
      const attachment = (t.attachments ?? []).flatMap((a) => a.details ?? []).find((d) => d.name === 'privateIPv4Address')?.value;
      replace(summary, h('dl', { class: 'facts' },
        fact('Last status', { id: 'task-last-status' }, status(t.lastStatus)),
        fact('Desired status', {}, status(t.desiredStatus)),
        fact('Health', {}, status(t.healthStatus)),
        fact('Task definition', {}, taskDefinitionLink(t.taskDefinitionArn)),
        fact('Group', {}, t.group ?? '—'),
        fact('Container instance', {}, shortArn(t.containerInstanceArn)),
        fact('Address', {}, attachment ?? '—'),
        fact('Started', {}, time(t.startedAt)),
        fact('Stopped', {}, time(t.stoppedAt)),
        fact('Stop code', {}, t.stopCode ?? '—'),
        fact('Stopped reason', {}, t.stoppedReason ?? '—')));
      replace(containers, table('Containers', ['Container', 'Image', 'Last status', 'Health', 'Exit code', 'Reason', 'Network bindings', 'Addresses'],
        (t.containers ?? []).map((c) => [c.name, c.image, status(c.lastStatus), status(c.healthStatus), c.exitCode ?? '—', c.reason ?? '',
          (c.networkBindings ?? []).map((b) => `${b.bindIP ?? ''}:${b.hostPort} → ${b.containerPort}/${b.protocol ?? 'tcp'}`).join(', ') || '—',
          (c.networkInterfaces ?? []).map((n) => n.privateIpv4Address).join(', ') || '—'])));

      // The awslogs stream of each container: <prefix>/<container>/<task id>, as the awslogs driver names it.
      logTargets = (definition.containerDefinitions ?? []).filter((c) => c.logConfiguration?.logDriver === 'awslogs').map((c) => {
        const o = c.logConfiguration.options ?? {};
        const prefix = o['awslogs-stream-prefix'];
        return { container: c.name, group: o['awslogs-group'], name: prefix ? `${prefix}/${c.name}/${taskId(t.taskArn)}` : null };
      }).filter((x) => x.group && x.name);
      if (containerSelect.options.length !== logTargets.length) {
        replace(containerSelect, logTargets.map((x) => h('option', { value: x.container }, x.container)));
      }
      const target = logTargets.find((x) => x.container === containerSelect.value) ?? logTargets[0];
      if (!target) {
        replace(logInfo, 'No container of this task sends its logs to CloudWatch Logs (the awslogs driver with a stream prefix).');
        return;
      }
      if (searching) {
        const found = await ctx.api.call('logs', 'FilterLogEvents', { logGroupName: target.group, logStreamNames: [target.name], filterPattern: searching, limit: 500 });
        const n = (found.events ?? []).length;
        replace(logInfo, `${n} ${n === 1 ? 'line' : 'lines'} of ${target.group} › ${target.name} ${n === 1 ? 'matches' : 'match'} ${searching}`);
        replace(logLines, (found.events ?? []).map(logLine));
        return;
      }
      if (!follow.checked && stream) return;
      if (!stream || stream.container !== target.container) { stream = { ...target, nextToken: undefined }; replace(logLines); }
      try {
        const page = await ctx.api.call('logs', 'GetLogEvents', { logGroupName: stream.group, logStreamName: stream.name, startFromHead: true, limit: 1000, ...(stream.nextToken ? { nextToken: stream.nextToken } : {}) });
        stream.nextToken = page.nextForwardToken ?? stream.nextToken;
        const atBottom = logLines.parentElement ? logLines.parentElement.scrollTop + logLines.parentElement.clientHeight >= logLines.parentElement.scrollHeight - 4 : true;
        logLines.append(...(page.events ?? []).map(logLine));
        while (logLines.childElementCount > 5000) logLines.firstElementChild.remove();
        if (atBottom && logLines.parentElement) logLines.parentElement.scrollTop = logLines.parentElement.scrollHeight;
        replace(logInfo, `${target.group} › ${target.name}${follow.checked ? ' (following)' : ''}`);
      } catch (e) {
        // The stream appears with the container's first line; until then there is nothing to show.
        if (e.code !== 'ResourceNotFoundException') throw e;
        replace(logInfo, `${target.group} › ${target.name}: no log lines yet.`);
      }
    },
  };
}

function logLine(e) {
  return h('li', {}, h('time', { datetime: new Date(e.timestamp).toISOString() }, new Date(e.timestamp).toLocaleTimeString()), ' ', h('span', { class: 'msg' }, e.message));
}

// ---- task definitions ---------------------------------------------------------------------------

export function families(ctx) {
  const body = live('Task definition families');
  return {
    title: 'Task definitions',
    crumbs: [],
    node: section('Families', body),
    async refresh() {
      const names = await listAll(ctx.api, 'ecs', 'ListTaskDefinitionFamilies', { status: 'ACTIVE', maxResults: 100 }, 'families');
      replace(body, names.length === 0 ? h('p', { class: 'empty' }, 'No task definitions.')
        : h('ul', { class: 'links' }, names.map((f) => h('li', {}, link(`#/task-definitions/${enc(f)}`, f)))));
    },
  };
}

export function family(ctx) {
  const name = ctx.params.family;
  const body = live('Revisions');
  return {
    title: `Task definition ${name}`,
    crumbs: [['#/task-definitions', 'Task definitions']],
    node: section('Revisions', body),
    async refresh() {
      const arns = await listAll(ctx.api, 'ecs', 'ListTaskDefinitions', { familyPrefix: name, sort: 'DESC', maxResults: 100 }, 'taskDefinitionArns');
      const mine = arns.filter((a) => shortArn(a).split(':')[0] === name);
      replace(body, mine.length === 0 ? h('p', { class: 'empty' }, 'No active revisions.')
        : h('ul', { class: 'links' }, mine.map((a) => h('li', {}, link(`#/task-definitions/${enc(name)}/${enc(shortArn(a).split(':')[1])}`, shortArn(a))))));
    },
  };
}

// What DescribeTaskDefinition answers but RegisterTaskDefinition does not take.
const READ_ONLY = ['taskDefinitionArn', 'revision', 'status', 'requiresAttributes', 'compatibilities', 'registeredAt', 'registeredBy', 'deregisteredAt', 'deleteRequestedAt'];

export function revision(ctx) {
  const { family: name, revision: rev } = ctx.params;
  const json = h('pre', { class: 'json', tabindex: 0, 'aria-label': 'This revision as JSON' });
  const diffWith = h('select', { id: 'diff-with' }, h('option', { value: '' }, 'choose a revision'));
  const diffOut = h('div', { class: 'diff-out', 'aria-live': 'polite' });
  const editor = h('textarea', { id: 'td-editor', rows: 24, spellcheck: false, 'aria-describedby': 'td-editor-hint' });
  let current;
  diffWith.addEventListener('change', () => ctx.act('Diff', async () => {
    if (!diffWith.value) { replace(diffOut); return; }
    const other = (await ctx.api.call('ecs', 'DescribeTaskDefinition', { taskDefinition: `${name}:${diffWith.value}` })).taskDefinition;
    replace(diffOut, diffView(pretty(registrable(other)), pretty(registrable(current)), `${name}:${diffWith.value}`, `${name}:${rev}`));
  }, { quiet: true, refresh: false }));
  return {
    title: `Task definition ${name}:${rev}`,
    crumbs: [['#/task-definitions', 'Task definitions'], [`#/task-definitions/${enc(name)}`, name]],
    live: false,
    node: h('div', {},
      section('JSON', json),
      section('Diff', h('label', { for: 'diff-with' }, `Compare ${name}:${rev} with `), diffWith, diffOut),
      section('Register a new revision',
        h('p', { id: 'td-editor-hint', class: 'hint' }, 'Edit the JSON (RegisterTaskDefinition\'s input) and register it as the next revision of its family.'),
        h('label', { for: 'td-editor' }, 'New revision JSON'), editor,
        h('div', { class: 'actions-bar' }, h('button', {
          type: 'button',
          onclick: () => ctx.act('Register task definition', async () => {
            let input;
            try { input = JSON.parse(editor.value); } catch (e) { throw Object.assign(new Error(e.message), { code: 'Invalid JSON' }); }
            const registered = (await ctx.api.call('ecs', 'RegisterTaskDefinition', input)).taskDefinition;
            ctx.go(`#/task-definitions/${enc(registered.family)}/${registered.revision}`);
          }),
        }, 'Register new revision')))),
    async refresh() {
      const [answer, arns] = await Promise.all([
        ctx.api.call('ecs', 'DescribeTaskDefinition', { taskDefinition: `${name}:${rev}`, include: ['TAGS'] }),
        listAll(ctx.api, 'ecs', 'ListTaskDefinitions', { familyPrefix: name, sort: 'DESC', maxResults: 100, status: 'ACTIVE' }, 'taskDefinitionArns'),
      ]);
      current = answer.taskDefinition;
      replace(json, pretty(current));
      const input = registrable(current);
      if (answer.tags?.length) input.tags = answer.tags;
      editor.value = JSON.stringify(input, null, 2);
      const others = arns.map((a) => shortArn(a).split(':')).filter(([f, r]) => f === name && r !== rev).map(([, r]) => r);
      const chosen = diffWith.value;
      replace(diffWith, h('option', { value: '' }, 'choose a revision'), others.map((r) => h('option', { value: r, selected: r === chosen }, `${name}:${r}`)));
    },
  };
}

const registrable = (definition) => Object.fromEntries(Object.entries(definition).filter(([k]) => !READ_ONLY.includes(k)));

function pretty(value) {
  const sort = (v) => (Array.isArray(v) ? v.map(sort) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])])) : v);
  return JSON.stringify(sort(value), null, 2);
}

/** A line diff (longest common subsequence) of two JSON texts. */
export function lineDiff(a, b) {
  const x = a.split('\n'), y = b.split('\n');
  const n = x.length, m = y.length;
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = x[i] === y[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push([' ', x[i]]); i++; j++; } else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push(['-', x[i++]]); else out.push(['+', y[j++]]);
  }
  while (i < n) out.push(['-', x[i++]]);
  while (j < m) out.push(['+', y[j++]]);
  return out;
}

function diffView(a, b, nameA, nameB) {
  const lines = lineDiff(a, b);
  const changed = lines.filter(([k]) => k !== ' ').length;
  // Changed lines with three lines of context; longer unchanged runs fold into one marker line.
  const near = lines.map((_, i) => lines.slice(Math.max(0, i - 3), i + 4).some(([k]) => k !== ' '));
  const shown = [];
  lines.forEach(([k, l], i) => {
    if (near[i]) shown.push(h('span', { class: k === '+' ? 'add' : k === '-' ? 'del' : 'same' }, `${k} ${l}\n`));
    else if (near[i - 1] !== false) shown.push(h('span', { class: 'fold' }, '  …\n'));
  });
  return h('div', {},
    h('p', {}, changed === 0 ? `${nameA} and ${nameB} register the same definition.` : `${changed} lines differ: − ${nameA}, + ${nameB}.`),
    changed === 0 ? '' : h('pre', { class: 'diff', tabindex: 0, 'aria-label': `Differences between ${nameA} and ${nameB}` }, shown));
}

// ---- secrets, parameters, log groups ------------------------------------------------------------

export function secrets(ctx) {
  const secretsBody = live('Secrets');
  const parametersBody = live('Parameters');
  return {
    title: 'Secrets and parameters',
    crumbs: [],
    node: h('div', {}, h('p', { class: 'hint' }, 'Names and versions only: the console never reads a secret\'s value or decrypts a parameter.'),
      section('Secrets Manager', secretsBody), section('Parameter Store', parametersBody)),
    async refresh() {
      const [s, p] = await Promise.all([
        ctx.api.call('secrets', 'ListSecrets', { MaxResults: 100 }),
        ctx.api.call('ssm', 'DescribeParameters', { MaxResults: 50 }),
      ]);
      replace(secretsBody, table('Secrets', ['Name', 'Versions (stages)', 'Last changed', 'Deleted'], (s.SecretList ?? []).map((x) => [
        x.Name, Object.entries(x.SecretVersionsToStages ?? {}).map(([v, stages]) => `${v.slice(0, 8)} (${stages.join(', ')})`).join('; '),
        time(x.LastChangedDate), x.DeletedDate ? time(x.DeletedDate) : '']), 'No secrets.'));
      replace(parametersBody, table('Parameters', ['Name', 'Type', 'Version', 'Last modified'], (p.Parameters ?? []).map((x) => [
        x.Name, x.Type, x.Version, time(x.LastModifiedDate)]), 'No parameters.'));
    },
  };
}

export function logGroups(ctx) {
  const body = live('Log groups');
  return {
    title: 'Log groups',
    crumbs: [],
    node: section('Log groups', body),
    async refresh() {
      const answer = await ctx.api.call('logs', 'DescribeLogGroups', { limit: 50 });
      replace(body, table('Log groups', ['Log group', 'Retention (days)', 'Stored bytes', 'Created'], (answer.logGroups ?? []).map((g) => [
        link(`#/logs/${enc(g.logGroupName)}`, g.logGroupName), g.retentionInDays ?? 'never expire', g.storedBytes ?? 0, time(g.creationTime)]), 'No log groups.'));
    },
  };
}

export function logGroup(ctx) {
  const group = ctx.params.group;
  const streams = live('Log streams');
  const results = h('ol', { class: 'log', 'aria-label': 'Matching log lines' });
  const pattern = h('input', { type: 'search', id: 'group-search', placeholder: 'filter pattern' });
  const form = h('form', {
    class: 'log-controls', 'aria-label': 'Search the log group',
    onsubmit: (e) => {
      e.preventDefault();
      ctx.act('Search', async () => {
        const found = await ctx.api.call('logs', 'FilterLogEvents', { logGroupName: group, filterPattern: pattern.value, limit: 500 });
        replace(results, (found.events ?? []).map(logLine));
        if (!(found.events ?? []).length) replace(results, h('li', {}, 'No matching lines.'));
      }, { quiet: true });
    },
  }, h('label', { for: 'group-search' }, 'Search'), pattern, h('button', { type: 'submit' }, 'Search'));
  return {
    title: `Log group ${group}`,
    crumbs: [['#/logs', 'Log groups']],
    node: h('div', {}, section('Search', form, h('div', { class: 'log-box' }, results)), section('Streams', streams)),
    async refresh() {
      const answer = await ctx.api.call('logs', 'DescribeLogStreams', { logGroupName: group, orderBy: 'LastEventTime', descending: true, limit: 50 });
      replace(streams, table('Log streams', ['Stream', 'Last event', 'Created'], (answer.logStreams ?? []).map((s) => [
        s.logStreamName, time(s.lastEventTimestamp), time(s.creationTime)]), 'No streams.'));
    },
  };
}
