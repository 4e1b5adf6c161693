// Example parameters: az deployment group create -g <group> -p infra/main.bicepparam
// Secrets and keys come from the environment, so this file can be committed:
//   export ECS_ACCESS_KEYS='AKIAEXAMPLEKEY000001:<40 random characters>'
//   export DEPLOY_WEBHOOK_SECRETS="$(openssl rand -hex 32)"     (optional: the deploy webhook)
//   export WORKER_SSH_PUBLIC_KEY="$(cat ~/.ssh/id_ed25519.pub)"
// Every other parameter has a default in main.bicep; see infra/README.md.
using 'main.bicep'

param ecsAccessKeys = readEnvironmentVariable('ECS_ACCESS_KEYS')
param deployWebhookSecrets = readEnvironmentVariable('DEPLOY_WEBHOOK_SECRETS', '')
param workerSshPublicKey = readEnvironmentVariable('WORKER_SSH_PUBLIC_KEY', '')

param namePrefix = 'ecs'
param ecsRegion = 'us-east-1'
param ecsAccountId = '000000000000'
param workerCluster = 'default'
param workerCount = 0
