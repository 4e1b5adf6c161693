// Key Vault in RBAC mode with the two secrets the control plane needs:
//   storage-connection-string  -> AzureWebJobsStorage (and the Functions content share), also read
//                                 by the worker hosts at service start
//   ecs-access-keys            -> Ecs__AccessKeys (SigV4 KEYID:SECRET pairs)
// The Functions app's identity may read both; the worker hosts' identity only the first.
param name string
param location string
param tags object
param purgeProtection bool
param softDeleteRetentionDays int
param storageAccountName string

@secure()
param ecsAccessKeys string

@description('Resource id and principal id of the Functions app\'s identity.')
param functionIdentityId string
param functionPrincipalId string

@description('Resource id and principal id of the worker hosts\' identity. Empty: no worker hosts.')
param workerIdentityId string
param workerPrincipalId string

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var storageSecretName = 'storage-connection-string'
var accessKeysSecretName = 'ecs-access-keys'

resource storage 'Microsoft.Storage/storageAccounts@2025-06-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2025-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionDays
    // null, not false: Key Vault refuses an explicit false.
    enablePurgeProtection: purgeProtection ? true : null
    // Public endpoint: the Functions app (no VNet integration here) resolves its Key Vault
    // references over it, and the worker hosts reach it through their NAT gateway. Every read
    // still needs an Entra ID token with the Key Vault Secrets User role.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource storageSecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = {
  parent: vault
  name: storageSecretName
  properties: {
    contentType: 'Azure Storage connection string'
    value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'
  }
}

resource accessKeysSecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = {
  parent: vault
  name: accessKeysSecretName
  properties: {
    contentType: 'SigV4 access keys: KEYID:SECRET pairs separated by ;'
    value: ecsAccessKeys
  }
}

// The Functions app resolves both references with its user-assigned identity.
resource functionCanRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionIdentityId, keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}

// The worker hosts only need storage: the role is scoped to that one secret.
resource workerCanRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(workerIdentityId)) {
  name: guid(storageSecret.id, workerIdentityId, keyVaultSecretsUser)
  scope: storageSecret
  properties: {
    principalId: workerPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
output storageConnectionSecretName string = storageSecret.name
// Versionless URIs: the app follows a rotated secret (App Service refreshes references within 24 h,
// or at once on any config change or restart).
output storageConnectionSecretUri string = storageSecret.properties.secretUri
output accessKeysSecretUri string = accessKeysSecret.properties.secretUri
