// The storage account: Tables (all state), Queues (all messages), Blobs (Functions host locks and
// keys; worker packages), Files (the Functions content share).
//
// Shared key access stays ON for one use alone: the Elastic Premium content share (Azure Files) is
// mounted with a connection string, which lives only in Key Vault. Everything else uses Entra ID:
// the Functions host and the control plane with the app's identity (roles on the account: they
// create tables and queues at run time), the worker hosts with theirs (Storage Table / Queue Data
// Contributor on exactly the tables and queues the worker uses), the load balancer data plane with
// its own (its table and the reconcile queue alone).
//
// Network: only the VNet's subnets (service endpoints) and the optional operator addresses reach
// the account; everything else is refused (publicNetworkAccess 'Enabled' with defaultAction
// 'Deny' is "enabled from selected networks": 'Disabled' would also refuse the service endpoints).
param name string
param location string
param tags object
param sku string
param contentShareName string
param workerPackageContainer string

@description('Resource id of the worker hosts\' identity, which reads worker packages and uses the worker\'s tables and queues. Empty: none.')
param workerIdentityId string
param workerPrincipalId string

@description('Resource id of the load balancer data plane\'s identity, which uses the LoadBalancing table and the reconcile queue and reads its package. Empty: none.')
param loadBalancerIdentityId string
param loadBalancerPrincipalId string

@description('Principal id of the Functions app\'s identity: the identity-based AzureWebJobsStorage (host and control plane).')
param functionIdentityId string
param functionPrincipalId string

@description('Ecs__StoragePrefix: the prefix of every table name.')
param tablePrefix string

@description('Subnets allowed through the firewall (service endpoints for Microsoft.Storage).')
param allowedSubnetIds array

@description('Public IP addresses or CIDR ranges allowed through the firewall (operators uploading worker packages). Empty: none.')
param allowedIpRanges array

@description('Principal that uploads worker packages. Empty: none.')
param operatorPrincipalId string
param operatorPrincipalType string

// Built-in roles.
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'

// What the worker (src/Worker) opens. Tables: TaskStore, TaskDefinitionStore, ContainerInstanceStore
// (register, heartbeat), ServiceStore (the resync after registering), TaskSecretsStore (its public
// key; the values sealed to it: never the Secrets or Parameters tables). Queues: reconcile, task-events,
// and its own command queue ci-<instance id> (TaskMessages.CommandQueue), named at run time.
var workerTables = [
  'Tasks'
  'TaskDefinitions'
  'ContainerInstances'
  'Services'
  'WorkerKeys'
  'TaskSecrets'
]
var workerQueues = [
  'reconcile'
  'task-events'
]
var commandQueuePrefix = 'ci-'

// What the load balancer data plane (src/LoadBalancer) opens: LoadBalancingStore's table (the configuration it
// serves, the targets' health it writes, its wake registration) and the reconcile queue (a target's health changed:
// its service reconciles). workerQueues[0] is that queue.
var dataPlaneTable = 'LoadBalancing'
var reconcileQueueIndex = 0

resource account 'Microsoft.Storage/storageAccounts@2025-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: sku
  }
  properties: {
    accessTier: 'Hot'
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    // Required by the Functions app: see the header. Everything else (the worker, the worker
    // package download, the portal) uses Entra ID, and the portal defaults to it.
    allowSharedKeyAccess: true
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
      virtualNetworkRules: [
        for subnetId in allowedSubnetIds: {
          id: subnetId
          action: 'Allow'
        }
      ]
      ipRules: [
        for range in allowedIpRanges: {
          value: range
          action: 'Allow'
        }
      ]
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: false
      services: {
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
        // Account-scoped keys for tables and queues: identity-based access to them works too,
        // should the code move to it later.
        table: { enabled: true, keyType: 'Account' }
        queue: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-06-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource packages 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-06-01' = {
  parent: blobService
  name: workerPackageContainer
  properties: {
    publicAccess: 'None'
  }
}

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2025-06-01' = {
  parent: account
  name: 'default'
}

// Created here because the app's WEBSITE_CONTENTAZUREFILECONNECTIONSTRING is a Key Vault
// reference, so the platform skips its own share validation and creation
// (WEBSITE_SKIP_CONTENTSHARE_VALIDATION=1).
resource contentShare 'Microsoft.Storage/storageAccounts/fileServices/shares@2025-06-01' = {
  parent: fileService
  name: contentShareName
  properties: {
    shareQuota: 100
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2025-06-01' = {
  parent: account
  name: 'default'
}

// The queue triggers' queues (ReconcileQueue.QueueName, the task-events queue). The code creates
// them too when missing; per-instance command queues and poison queues are created at run time.
resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2025-06-01' = [
  for queue in workerQueues: {
    parent: queueService
    name: queue
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-06-01' = {
  parent: account
  name: 'default'
}

// The code creates its tables on first use (names carry Ecs__StoragePrefix); the worker's are
// created here so its role assignments can be scoped to each one.
resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-06-01' = [
  for table in workerTables: {
    parent: tableService
    name: '${tablePrefix}${table}'
  }
]

resource dataPlaneTableResource 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-06-01' = {
  parent: tableService
  name: '${tablePrefix}${dataPlaneTable}'
}

// Role assignment names derive from identity resource ids (known before deployment, unlike
// principal ids), so what-if can predict them.
resource packageReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(workerIdentityId)) {
  name: guid(packages.id, workerIdentityId, storageBlobDataReader)
  scope: packages
  properties: {
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
  }
}

// The Functions app: the host needs Blob Data Owner (locks, keys) and Queue Data Contributor (its
// triggers); the control plane creates tables and per-instance command queues at run time, so its
// roles are on the account.
resource functionAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in [
    storageBlobDataOwner
    storageQueueDataContributor
    storageTableDataContributor
  ]: {
    name: guid(account.id, functionIdentityId, role)
    scope: account
    properties: {
      principalId: functionPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
    }
  }
]

// The worker's data access, table by table and queue by queue (the narrowest scopes Azure has).
resource workerTableAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (table, i) in workerTables: if (!empty(workerIdentityId)) {
    name: guid(tables[i].id, workerIdentityId, storageTableDataContributor)
    scope: tables[i]
    properties: {
      principalId: workerPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    }
  }
]

resource workerQueueAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queue, i) in workerQueues: if (!empty(workerIdentityId)) {
    name: guid(queues[i].id, workerIdentityId, storageQueueDataContributor)
    scope: queues[i]
    properties: {
      principalId: workerPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    }
  }
]

// Command queues are named after container instance ids that exist only at run time, so no queue
// scope can name them: the role is on the account, with a condition that limits every message
// action to queues named ci-*. (The role's queue-level actions are not conditionable.)
resource workerCommandQueueAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(workerIdentityId)) {
  name: guid(account.id, workerIdentityId, storageQueueDataContributor, commandQueuePrefix)
  scope: account
  properties: {
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    description: 'ECS worker hosts: messages of the command queues ${commandQueuePrefix}* only'
    conditionVersion: '2.0'
    condition: '((!(ActionMatches{\'Microsoft.Storage/storageAccounts/queueServices/queues/messages/read\'}) AND !(ActionMatches{\'Microsoft.Storage/storageAccounts/queueServices/queues/messages/write\'}) AND !(ActionMatches{\'Microsoft.Storage/storageAccounts/queueServices/queues/messages/delete\'}) AND !(ActionMatches{\'Microsoft.Storage/storageAccounts/queueServices/queues/messages/process/action\'})) OR (@Resource[Microsoft.Storage/storageAccounts/queueServices/queues:name] StringStartsWith \'${commandQueuePrefix}\'))'
  }
}

// The data plane's data access: its table and the reconcile queue alone, and its package.
resource dataPlaneTableAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(loadBalancerIdentityId)) {
  name: guid(dataPlaneTableResource.id, loadBalancerIdentityId, storageTableDataContributor)
  scope: dataPlaneTableResource
  properties: {
    principalId: loadBalancerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
  }
}

resource dataPlaneQueueAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(loadBalancerIdentityId)) {
  name: guid(queues[reconcileQueueIndex].id, loadBalancerIdentityId, storageQueueDataContributor)
  scope: queues[reconcileQueueIndex]
  properties: {
    principalId: loadBalancerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
  }
}

resource dataPlanePackageReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(loadBalancerIdentityId)) {
  name: guid(packages.id, loadBalancerIdentityId, storageBlobDataReader)
  scope: packages
  properties: {
    principalId: loadBalancerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
  }
}

resource packageWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(packages.id, operatorPrincipalId, storageBlobDataContributor)
  scope: packages
  properties: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
  }
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output tableEndpoint string = account.properties.primaryEndpoints.table
output queueEndpoint string = account.properties.primaryEndpoints.queue
