// The control plane: a Linux Functions app on an Elastic Premium plan, .NET 10 isolated worker.
//
// Why Elastic Premium: it runs dotnet-isolated 10.0 on Linux (linuxFxVersion DOTNET-ISOLATED|10.0),
// keeps always-ready instances (no cold start for the API, and the 15-second sweep and
// one-minute resync timers fire on time), has no execution time limit, and supports a Key Vault
// reference for the content share's connection string. Flex Consumption can be cheaper when idle, but takes a different resource
// shape (functionAppConfig: runtime, scale, deployment storage; no linuxFxVersion, no
// WEBSITE_CONTENT* settings) and its .NET 10 availability varies by region; see infra/README.md.
param planName string
param appName string
param location string
param tags object
param planSku string
param minimumInstances int
param maximumInstances int

@description('Resource id of the user-assigned identity that resolves the Key Vault references.')
param identityId string
param identityClientId string

@description('Versionless Key Vault URI of the storage connection string (the content share only).')
param storageConnectionSecretUri string

@description('Blob, Queue and Table service endpoints of the storage account, for the identity-based AzureWebJobsStorage.')
param blobServiceUri string
param queueServiceUri string
param tableServiceUri string

@description('Versionless Key Vault URI of the SigV4 access keys.')
param accessKeysSecretUri string

@description('Versionless Key Vault URI of the deploy webhook\'s secrets. Empty: the setting is left out and the webhook refuses every delivery.')
param webhookSecretUri string

@description('The Key Vault key that wraps the secret stores\' key ring (Secrets__KeyVaultKeyId), versionless.')
param kekUri string

param contentShareName string

@description('Resource id of the VNet integration subnet (delegated to Microsoft.Web/serverFarms). Storage and Key Vault admit only it.')
param subnetId string

@description('Application Insights connection string. Empty: no Application Insights settings.')
param appInsightsConnectionString string

@description('The Ecs__* settings, name to value.')
param ecsSettings object

@description('Capacity__ScaleSets__* settings: the worker scale set as a managed worker pool (empty: none).')
param poolSettings object = {}

var storageReference = '@Microsoft.KeyVault(SecretUri=${storageConnectionSecretUri})'

var platformSettings = {
  FUNCTIONS_EXTENSION_VERSION: '~4'
  FUNCTIONS_WORKER_RUNTIME: 'dotnet-isolated'
  AzureWebJobsDisableHomepage: 'true'
  // Identity-based: the Functions host (locks, keys, queue triggers) and the control plane's own
  // Tables and Queues (src/Core/Storage/StorageAccess.cs) use the app's managed identity, no key.
  AzureWebJobsStorage__blobServiceUri: blobServiceUri
  AzureWebJobsStorage__queueServiceUri: queueServiceUri
  AzureWebJobsStorage__tableServiceUri: tableServiceUri
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // Elastic Premium mounts its content from Azure Files, which takes a connection string only: the
  // one place the account key is still used. It is a Key Vault reference, which the platform cannot
  // resolve while validating the request, so validation is skipped and the share is created by the
  // storage module.
  WEBSITE_CONTENTAZUREFILECONNECTIONSTRING: storageReference
  WEBSITE_CONTENTSHARE: contentShareName
  WEBSITE_SKIP_CONTENTSHARE_VALIDATION: '1'
  WEBSITE_RUN_FROM_PACKAGE: '1'
  Ecs__AccessKeys: '@Microsoft.KeyVault(SecretUri=${accessKeysSecretUri})'
  // Reached with the same user-assigned identity as storage (AzureWebJobsStorage__clientId).
  Secrets__KeyVaultKeyId: kekUri
}

var monitoringSettings = empty(appInsightsConnectionString)
  ? {}
  : {
      APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
      // Entra ID ingestion with the app's identity (the component has local auth off).
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    }

var deploySettings = empty(webhookSecretUri)
  ? {}
  : {
      Deploy__WebhookSecrets: '@Microsoft.KeyVault(SecretUri=${webhookSecretUri})'
    }

var allSettings = union(platformSettings, monitoringSettings, deploySettings, ecsSettings, poolSettings)

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'elastic'
  sku: {
    name: planSku
    tier: 'ElasticPremium'
  }
  properties: {
    reserved: true // Linux
    maximumElasticWorkerCount: maximumInstances
  }
}

resource app 'Microsoft.Web/sites@2025-03-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    clientAffinityEnabled: false
    keyVaultReferenceIdentity: identityId
    // Outbound through the VNet, where Storage and Key Vault let it in (service endpoints): all
    // traffic, the Key Vault reference resolution and the content share (Azure Files) included.
    virtualNetworkSubnetId: subnetId
    outboundVnetRouting: {
      allTraffic: true
      contentShareTraffic: true
    }
    siteConfig: {
      linuxFxVersion: 'DOTNET-ISOLATED|10.0'
      minimumElasticInstanceCount: minimumInstances
      // Lets the runtime, which sees the resolved Key Vault references, vote on scaling for the
      // queue triggers instead of relying on the scale controller reading the connection itself.
      functionsRuntimeScaleMonitoringEnabled: true
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        for setting in items(allSettings): {
          name: setting.key
          value: setting.value
        }
      ]
    }
  }
}

// No basic (user name and password) publishing at all: no FTP, and the SCM (Kudu) endpoint takes
// Entra ID tokens only (az functionapp deployment ... with az login, or a federated CI identity).
resource ftp 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scm 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = app.name
output url string = 'https://${app.properties.defaultHostName}'
