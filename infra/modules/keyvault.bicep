// Key Vault in RBAC mode with the two secrets the control plane needs:
//   storage-connection-string  -> WEBSITE_CONTENTAZUREFILECONNECTIONSTRING (the content share)
//   ecs-access-keys            -> Ecs__AccessKeys (SigV4 KEYID:SECRET pairs)
//   deploy-webhook-secrets     -> Deploy__WebhookSecrets (the deploy webhook's HMAC secrets; only when given)
// and one key, secrets-kek (RSA 3072), which wraps the key ring that encrypts Secrets Manager and
// SecureString values (Secrets__KeyVaultKeyId); the app may wrap and unwrap with it, nothing more.
// Only the Functions app's identity may read them, and only from its VNet integration subnet: the
// worker hosts use their managed identity for storage and need nothing from the vault.
param name string
param location string
param tags object
param purgeProtection bool
param softDeleteRetentionDays int
param storageAccountName string

@secure()
param ecsAccessKeys string

@secure()
param deployWebhookSecrets string

@description('Whether deployWebhookSecrets is given (a plain flag, so no output depends on the secret).')
param deployWebhookEnabled bool

@description('Resource id and principal id of the Functions app\'s identity.')
param functionIdentityId string
param functionPrincipalId string

@description('Subnets allowed through the firewall (service endpoints for Microsoft.KeyVault).')
param allowedSubnetIds array

@description('Public IP addresses or CIDR ranges allowed through the firewall (operators). Empty: none.')
param allowedIpRanges array

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultCryptoServiceEncryptionUser = 'e147488a-f6f5-4113-8e2d-b22465e65bf6'
var storageSecretName = 'storage-connection-string'
var accessKeysSecretName = 'ecs-access-keys'
var deployWebhookSecretName = 'deploy-webhook-secrets'

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
    // Reachable from the Functions app's integration subnet (service endpoint; the app resolves
    // its Key Vault references through the VNet) and the operator addresses only. 'Enabled' with
    // defaultAction 'Deny' is "selected networks": 'Disabled' would refuse the service endpoint too.
    // Deployments write the secrets through Azure Resource Manager, which the firewall does not gate.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
      virtualNetworkRules: [
        for subnetId in allowedSubnetIds: {
          id: subnetId
          ignoreMissingVnetServiceEndpoint: false
        }
      ]
      ipRules: [
        for range in allowedIpRanges: {
          value: range
        }
      ]
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

// Only when the deployment gives one: Key Vault stores no empty secret, and without it the webhook is simply off.
resource deployWebhookSecret 'Microsoft.KeyVault/vaults/secrets@2025-05-01' = if (deployWebhookEnabled) {
  parent: vault
  name: deployWebhookSecretName
  properties: {
    contentType: 'Deploy webhook HMAC secrets separated by ;'
    value: deployWebhookSecrets
  }
}

// The Functions app resolves the references with its user-assigned identity.
resource functionCanRead 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionIdentityId, keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
  }
}

// The key-encryption key of the secret stores: it never leaves the vault; the app only wraps and unwraps.
resource secretsKek 'Microsoft.KeyVault/vaults/keys@2025-05-01' = {
  parent: vault
  name: 'secrets-kek'
  properties: {
    kty: 'RSA'
    keySize: 3072
    keyOps: [
      'wrapKey'
      'unwrapKey'
    ]
  }
}

// "Key Vault Crypto Service Encryption User": read the key and wrap/unwrap with it, on this key only.
resource functionCanWrap 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(secretsKek.id, functionIdentityId, keyVaultCryptoServiceEncryptionUser)
  scope: secretsKek
  properties: {
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCryptoServiceEncryptionUser)
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
// Versionless URIs: the app follows a rotated secret (App Service refreshes references within 24 h,
// or at once on any config change or restart).
output storageConnectionSecretUri string = storageSecret.properties.secretUri
output accessKeysSecretUri string = accessKeysSecret.properties.secretUri
output webhookSecretUri string = deployWebhookEnabled ? deployWebhookSecret!.properties.secretUri : ''
// Versionless: wrapkey uses the key's current version, and each ring row names the version that wrapped it.
output kekUri string = secretsKek.properties.keyUri
