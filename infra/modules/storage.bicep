// The storage account: Tables (all state), Queues (all messages), Blobs (Functions host locks and
// keys; worker packages), Files (the Functions content share).
//
// Shared key access stays ON: the control plane and the worker open Tables and Queues with a
// connection string (src/Core/Storage/StorageClients.cs takes one; identity-based
// AzureWebJobsStorage__accountName settings are not read by our code), and the Elastic Premium
// content share is mounted with one. The connection string lives only in Key Vault.
param name string
param location string
param tags object
param sku string
param contentShareName string
param workerPackageContainer string

@description('Resource id of the worker hosts\' identity, which reads worker packages. Empty: none.')
param workerIdentityId string
param workerPrincipalId string

@description('Principal that uploads worker packages. Empty: none.')
param operatorPrincipalId string
param operatorPrincipalType string

// Built-in roles.
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

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
    // Required: see the header. Everything that can use Entra ID (the worker package download,
    // the portal) does, and the portal defaults to it.
    allowSharedKeyAccess: true
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
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
  for queue in [
    'reconcile'
    'task-events'
  ]: {
    parent: queueService
    name: queue
  }
]

// Tables are created by the code on first use (their names carry Ecs__StoragePrefix).
resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-06-01' = {
  parent: account
  name: 'default'
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
